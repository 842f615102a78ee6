"""The Helpdesk page through AppTest, against the fake Chatwoot on 127.0.0.1."""

from __future__ import annotations

from sqlalchemy import select

from core.models import AuditEvent
from tests.app.conftest import (
    AGENT_TOKEN,
    PLATFORM_TOKEN,
    button,
    open_page,
    page_links,
    read,
    sign_in,
    text_input,
    texts,
)

PAGE = "app_pages/helpdesk.py"
INTEGRATIONS = ("Go to Integrations", "integrations")  # (label, url path)
MEMBERS = "/api/v1/accounts/1/inbox_members"
GOOD_PASSWORD = "Corr3ct-Horse!"


def helpdesk(username: str, password: str):
    return open_page(sign_in(username, password), PAGE)


def messages(at, kind: str) -> str:
    return "\n".join(read(e.value) for e in getattr(at, kind))


def create(at, name: str, role: str = "agent", password: str | None = None):
    text_input(at, "Agent name").input(name)
    at.radio(key="hd-role").set_value(role)
    if password is not None:
        text_input(at, "Password").input(password)
    at.run()
    button(at, "Create agent").click()
    at.run()
    assert not at.exception, at.exception
    return at


# ----- what is missing ------------------------------------------------------------------------------------


def test_without_an_integration_the_page_says_what_to_connect(app_env, member):
    at = helpdesk("alice", "alice-password-1")
    assert [t.value for t in at.title] == ["Helpdesk"]
    assert "no Chatwoot integration yet" in texts(at)
    assert "an administrator's access token" in texts(at)
    assert INTEGRATIONS in page_links(at)
    assert not at.tabs


def test_an_inactive_integration_is_named_with_what_to_do(app_env, member, chatwoot_integration):
    view = chatwoot_integration(member)
    app_env.integrations.set_active(member, view.id, False)
    at = helpdesk("alice", "alice-password-1")
    assert "Acme desk is inactive. Activate it on the Integrations page" in messages(at, "warning")
    assert INTEGRATIONS in page_links(at)


def test_an_agents_token_is_explained_and_links_to_integrations(app_env, member, chatwoot_integration):
    chatwoot_integration(member, AGENT_TOKEN)
    at = helpdesk("alice", "alice-password-1")
    error = messages(at, "error")
    assert "whose role in Acme Support is 'agent'" in error
    assert "needs an administrator's access token" in error
    assert INTEGRATIONS in page_links(at)
    assert AGENT_TOKEN not in texts(at)
    assert not at.tabs


def test_an_unreachable_chatwoot_is_explained_and_tried_again_on_demand(
    app_env, member, chatwoot_integration, fake_chatwoot
):
    chatwoot_integration(member)
    fake_chatwoot.force("/api/v1/profile", 500, {"error": "down"})
    at = helpdesk("alice", "alice-password-1")
    assert "Chatwoot could not be reached for Acme desk" in messages(at, "error")
    assert "internal problem (500)" in messages(at, "error")
    assert not at.tabs
    at.run()  # the failure is reused briefly: no request per rerun
    assert len(fake_chatwoot.requests_to("/api/v1/profile")) == 1
    button(at, "Try again").click()
    at.run()
    assert not at.error
    assert "Connected to **Acme Support**" in texts(at)


# ----- header and caching ---------------------------------------------------------------------------------


def test_header_shows_account_seats_and_refresh_rereads(app_env, other_member, chatwoot_integration, fake_chatwoot):
    chatwoot_integration(other_member)
    at = helpdesk("bob", "bob-password-12")
    shown = texts(at)
    assert "Connected to **Acme Support** (account 1)" in shown
    assert "1 of 2 agent seats used (Starter tier)." in shown
    # Someone adds an agent in Chatwoot itself: the brief cache still shows the earlier read ...
    extra = fake_chatwoot.add_user("Cy Outside", "cy@acme.test")
    fake_chatwoot.add_account_user(fake_chatwoot.seed.account.id, extra.id, "agent")
    at.run()
    assert "1 of 2 agent seats used" in texts(at)
    # ... until Refresh.
    button(at, "Refresh").click()
    at.run()
    assert "2 of 2 agent seats used (Starter tier). The Team tier allows more." in texts(at)


# ----- Create agent ---------------------------------------------------------------------------------------


def test_create_through_the_application_api(app_env, other_member, chatwoot_integration, fake_chatwoot):
    chatwoot_integration(other_member)
    at = helpdesk("bob", "bob-password-12")
    assert not [t for t in at.text_input if t.label == "Password"]
    assert "Chatwoot e-mails the new agent a link to set a password" in messages(at, "info")
    text_input(at, "Agent name").input("José Müller")
    at.run()
    assert text_input(at, "Agent e-mail").value == "bob+jose-muller@example.com"  # suggested, editable
    assert "Suggested from your own address" in texts(at)

    create(at, "José Müller", "administrator")
    assert "José Müller was added as an administrator. Chatwoot e-mails bob+jose-muller@example.com" in messages(
        at, "success"
    )
    assert not at.toast  # one message for the outcome
    user = next(u for u in fake_chatwoot.users.values() if u.email == "bob+jose-muller@example.com")
    assert user.password is None and user.confirmed is False
    assert fake_chatwoot.account_users[(1, user.id)].role == "administrator"
    assert text_input(at, "Agent name").value == ""  # the form is ready for the next agent
    # The cache was dropped: the seat count and the agents table include the new agent.
    assert "2 of 2 agent seats used" in texts(at)
    assert "José Müller" in list(at.dataframe[0].value["Name"])


def test_create_through_the_platform_api_with_live_password_rules(app_env, admin, chatwoot_integration, fake_chatwoot):
    chatwoot_integration(admin, platform_token=PLATFORM_TOKEN)
    at = helpdesk("root", "admin-password-1")
    assert "link to set a password" not in messages(at, "info")
    text_input(at, "Agent name").input("Bo Li")
    text_input(at, "Password").input("short")
    at.run()
    shown = texts(at)
    assert ":green[✓ A lower-case letter (a-z)]" in shown
    assert ":red[✗ At least 8 characters]" in shown
    assert ":red[✗ A number (0-9)]" in shown
    assert ":red[✗ An upper-case letter (A-Z)]" in shown
    # The service enforces the rules too: nothing reaches Chatwoot.
    button(at, "Create agent").click()
    at.run()
    assert "The password needs: at least 8 characters; a number (0-9)" in messages(at, "error")
    assert not fake_chatwoot.requests_to("/platform/api/v1/users")

    text_input(at, "Password").input(GOOD_PASSWORD)
    at.run()
    assert ":red[" not in texts(at)
    button(at, "Create agent").click()
    at.run()
    assert not at.exception
    assert (
        "Bo Li was created as an agent and can sign in to Chatwoot as root+bo-li@example.com with the password"
        in messages(at, "success")
    )
    user = next(u for u in fake_chatwoot.users.values() if u.email == "root+bo-li@example.com")
    assert user.password == GOOD_PASSWORD
    assert fake_chatwoot.account_users[(1, user.id)].role == "agent"
    assert GOOD_PASSWORD not in texts(at)
    assert text_input(at, "Password").value == ""


def test_at_the_seat_limit_the_form_names_the_tier_and_is_disabled(app_env, member, chatwoot_integration):
    chatwoot_integration(member)  # Free tier: 1 seat, and Andy uses it
    at = helpdesk("alice", "alice-password-1")
    warnings = messages(at, "warning")
    assert "1 of 1 agent seats used (Free tier). The Starter tier allows more." in warnings
    assert "No agent seat left" in warnings
    assert button(at, "Create agent").disabled


def test_a_duplicate_email_is_reported_plainly(app_env, admin, chatwoot_integration, fake_chatwoot):
    chatwoot_integration(admin)
    at = helpdesk("root", "admin-password-1")
    create(at, "Bo Li")
    assert "Bo Li was added as an agent" in messages(at, "success")
    text_input(at, "Agent name").input("Bo  Li!")  # the same slug, so the same e-mail
    at.run()
    assert "An agent with the e-mail root+bo-li@example.com already exists in this account (Bo Li)" in messages(
        at, "warning"
    )
    button(at, "Create agent").click()
    at.run()
    error = messages(at, "error")
    assert "An agent with the e-mail root+bo-li@example.com already exists in this Chatwoot account (Bo Li)" in error
    assert not at.toast
    assert len(fake_chatwoot.requests_to("/api/v1/accounts/1/agents", "POST")) == 1  # not retried blindly


# ----- Manage collaborators -------------------------------------------------------------------------------


class MemberBox:
    """Whether ``user`` works in ``inbox``, as the page's inbox picker of that agent shows and changes it."""

    def __init__(self, at, inbox, user):
        self.at, self.inbox, self.picker = at, inbox, at.multiselect(key=f"member-{user.id}")

    @property
    def value(self) -> bool:
        return self.inbox.id in self.picker.value

    def check(self) -> None:
        self.picker.select(self.inbox.id)

    def uncheck(self) -> None:
        self.picker.unselect(self.inbox.id)


def member_box(at, inbox, user) -> MemberBox:
    return MemberBox(at, inbox, user)


def test_agents_table_and_grid_show_the_live_membership(app_env, admin, chatwoot_integration, fake_chatwoot):
    chatwoot_integration(admin)
    seed = fake_chatwoot.seed
    at = helpdesk("root", "admin-password-1")
    table = at.dataframe[0].value
    assert list(table.columns) == ["Name", "E-mail", "Role", "Availability", "Confirmed"]
    assert list(table["Name"]) == ["Ada Admin (this integration's token)", "Andy Agent"]
    assert list(table["Role"]) == ["Administrator", "Agent"]
    assert list(table["Confirmed"]) == [True, True]
    assert member_box(at, seed.website, seed.andy).value is True
    assert member_box(at, seed.website, seed.ada).value is False
    assert member_box(at, seed.shop, seed.andy).value is False
    assert member_box(at, seed.mail, seed.ada).value is False
    assert button(at, "Save changes").disabled


def test_saving_applies_only_the_difference_and_shows_the_truth_after_a_partial_failure(
    app_env, admin, chatwoot_integration, fake_chatwoot
):
    chatwoot_integration(admin)
    seed = fake_chatwoot.seed
    at = helpdesk("root", "admin-password-1")
    member_box(at, seed.website, seed.andy).uncheck()  # remove Andy from Website
    member_box(at, seed.shop, seed.ada).check()  # add Ada to Shop: Chatwoot will fail this one
    member_box(at, seed.shop, seed.andy).check()  # add Andy to Shop
    at.run()
    assert "3 unsaved changes" in texts(at)
    fake_chatwoot.force(MEMBERS, 500, {"error": "boom"}, method="POST")  # the first add fails
    before = len(fake_chatwoot.requests)

    button(at, "Save changes").click()
    at.run()
    assert not at.exception

    writes = [(r.method, r.json()) for r in fake_chatwoot.requests[before:] if r.method != "GET"]
    assert writes == [
        ("DELETE", {"inbox_id": seed.website.id, "user_ids": [seed.andy.id]}),
        ("POST", {"inbox_id": seed.shop.id, "user_ids": [seed.ada.id]}),
        ("POST", {"inbox_id": seed.shop.id, "user_ids": [seed.andy.id]}),
    ]
    assert "1 of 3 changes failed; the others were made" in messages(at, "error")
    report = at.dataframe[1].value
    assert list(report["Outcome"]) == ["✓ done", "✗ failed", "✓ done"]
    failed = report[report["Outcome"] == "✗ failed"].iloc[0]
    assert (failed["Inbox"], failed["Agent"], failed["Change"]) == ("Shop", "Ada Admin", "Add")
    assert "internal problem (500)" in failed["Message"]
    # The grid shows what Chatwoot has now, not what was ticked.
    assert fake_chatwoot.inboxes[seed.shop.id].members == [seed.andy.id]
    assert fake_chatwoot.inboxes[seed.website.id].members == []
    assert member_box(at, seed.shop, seed.ada).value is False
    assert member_box(at, seed.shop, seed.andy).value is True
    assert member_box(at, seed.website, seed.andy).value is False
    assert "unsaved change" not in texts(at)
    assert not at.toast and len(at.error) == 1  # one message for the outcome, the table behind it


def test_only_changed_inboxes_are_sent(app_env, admin, chatwoot_integration, fake_chatwoot):
    chatwoot_integration(admin)
    seed = fake_chatwoot.seed
    at = helpdesk("root", "admin-password-1")
    # Meanwhile someone adds Ada to Website in Chatwoot; the page still shows its earlier read.
    fake_chatwoot.add_inbox_member(seed.website.id, seed.ada.id)
    member_box(at, seed.mail, seed.andy).check()
    at.run()
    button(at, "Save changes").click()
    at.run()
    assert "The change was made in Chatwoot." in messages(at, "success")
    assert sorted(fake_chatwoot.inboxes[seed.website.id].members) == sorted([seed.andy.id, seed.ada.id])
    assert member_box(at, seed.website, seed.ada).value is True  # re-read after the save
    assert member_box(at, seed.mail, seed.andy).value is True


def test_an_agent_is_removed_after_confirming_and_the_page_rereads(app_env, admin, chatwoot_integration, fake_chatwoot):
    integration = chatwoot_integration(admin)
    seed = fake_chatwoot.seed
    at = helpdesk("root", "admin-password-1")
    choice = at.selectbox(key="hd-remove-choice")
    assert choice.options == ["Andy Agent · andy@acme.test"]  # never the token's own user
    button(at, "Remove…").click()
    at.run()
    assert "Remove **Andy Agent**" in texts(at)
    assert list(at.dataframe[0].value["Name"]) == ["Ada Admin (this integration's token)", "Andy Agent"]
    button(at, "Remove from Chatwoot").click()
    at.run()
    assert not at.exception, at.exception
    assert list(at.dataframe[0].value["Name"]) == ["Ada Admin (this integration's token)"]
    assert seed.andy.id not in {user_id for _, user_id in fake_chatwoot.account_users}
    with app_env.factory() as session:
        [event] = session.scalars(select(AuditEvent).where(AuditEvent.action == "helpdesk.agent_delete")).all()
    assert (event.outcome, event.integration_id, event.details["agent_id"]) == ("success", integration.id, seed.andy.id)


# ----- the agent's e-mail: a field of its own -----------------------------------------------------------


def test_a_typed_email_is_kept_when_the_name_changes_and_is_the_one_created(
    app_env, admin, chatwoot_integration, fake_chatwoot
):
    chatwoot_integration(admin)
    at = helpdesk("root", "admin-password-1")
    text_input(at, "Agent name").input("Bo Li")
    at.run()
    assert text_input(at, "Agent e-mail").value == "root+bo-li@example.com"
    text_input(at, "Agent name").input("Bo Lin")  # still the suggestion: it follows the name
    at.run()
    assert text_input(at, "Agent e-mail").value == "root+bo-lin@example.com"
    text_input(at, "Agent e-mail").input("  Bo.Lin@Shop.Example ")
    text_input(at, "Agent name").input("Bo Lin-Li")
    at.run()
    assert text_input(at, "Agent e-mail").value == "  Bo.Lin@Shop.Example "  # typed by hand: never replaced
    assert "Chatwoot's mail to the agent goes to this address." in texts(at)
    button(at, "Create agent").click()
    at.run()
    assert not at.exception, at.exception
    assert "bo.lin@shop.example" in messages(at, "success")
    created = next(u for u in fake_chatwoot.users.values() if u.name == "Bo Lin-Li")
    assert created.email == "bo.lin@shop.example"
    with app_env.factory() as session:
        [event] = session.scalars(select(AuditEvent).where(AuditEvent.action == "helpdesk.agent_create")).all()
    assert event.details["email"] == "bo.lin@shop.example"


def test_an_unusable_email_is_refused_under_its_field_and_nothing_is_sent(
    app_env, admin, chatwoot_integration, fake_chatwoot
):
    chatwoot_integration(admin)
    at = helpdesk("root", "admin-password-1")
    text_input(at, "Agent name").input("Bo Li")
    at.run()
    text_input(at, "Agent e-mail").input("bo li at shop")
    at.run()
    assert "bo li at shop is not a valid e-mail address" in messages(at, "error")
    button(at, "Create agent").click()
    at.run()
    assert "is not a valid e-mail address" in messages(at, "error")
    assert text_input(at, "Agent name").value == "Bo Li"  # nothing typed is lost
    assert not fake_chatwoot.requests_to("/api/v1/accounts/1/agents", "POST")
    button(at, "Use the suggested address").click()
    at.run()
    assert text_input(at, "Agent e-mail").value == "root+bo-li@example.com"


def test_each_agent_has_an_inbox_picker_named_by_what_it_holds(app_env, admin, chatwoot_integration, fake_chatwoot):
    chatwoot_integration(admin)
    seed = fake_chatwoot.seed
    at = helpdesk("root", "admin-password-1")
    labels = [read(e.label) for e in at.expander if "·" in e.label]
    assert labels == ["Ada Admin · no inbox", "Andy Agent · Website"]
    picker = at.multiselect(key=f"member-{seed.andy.id}")
    assert picker.options == ["Shop (Website)", "Support mail (Email)", "Website (Website)"]
    picker.select(seed.shop.id)
    at.run()
    assert "Andy Agent · Shop, Website · unsaved" in [read(e.label) for e in at.expander]
    assert "1 unsaved change" in texts(at)
