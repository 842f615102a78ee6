"""The widget page's "Create a website inbox for this site" and the integration page's Greeting bot, through
AppTest against the fake Chatwoot on 127.0.0.1."""

from __future__ import annotations

from tests.app.conftest import ADMIN_TOKEN, button, open_page, sign_in, text_input, texts

WIDGET = "app_pages/widget.py"
DETAIL = "app_pages/integration.py"
OFFER = "Create a website inbox for this site"


def desk(app_env, fake_chatwoot, actor, *, inboxes: bool, bots: bool = False):
    config = {
        "baseUrl": fake_chatwoot.url,
        "accountId": str(fake_chatwoot.seed.account.id),
        "apiKey": ADMIN_TOKEN,
        "features": {"autoCreateInboxes": inboxes, "autoCreateBots": bots, "syncContacts": False},
    }
    return app_env.integrations.create(actor, "Acme desk", "CHATWOOT", config)


def test_with_the_toggle_off_the_widget_page_says_why_there_is_no_button(app_env, other_member, fake_chatwoot):
    desk(app_env, fake_chatwoot, other_member, inboxes=False)
    at = open_page(sign_in("bob", "bob-password-12"), WIDGET)
    assert OFFER not in [b.label for b in at.button]
    assert "Auto-create inboxes toggle is off" in texts(at)


def test_with_the_toggle_on_the_widget_page_creates_the_inbox_once(app_env, other_member, fake_chatwoot):
    desk(app_env, fake_chatwoot, other_member, inboxes=True)
    at = open_page(sign_in("bob", "bob-password-12"), WIDGET)
    assert OFFER in [b.label for b in at.button]
    before = len(fake_chatwoot.inboxes)
    for _ in range(2):
        text_input(at, "Website address").input("https://blog.acme.test/")
        text_input(at, "Welcome title").input("**Hi** [x](https://evil.test)")
        button(at, OFFER).click()
        at.run()
        assert not at.exception, at.exception
    assert len(fake_chatwoot.inboxes) == before + 1
    created = max(fake_chatwoot.inboxes.values(), key=lambda i: i.id)
    assert (created.website_url, created.welcome_title) == ("https://blog.acme.test/", "**Hi** [x](https://evil.test)")
    assert not fake_chatwoot.requests_to("/api/v1/accounts/1/agent_bots")  # bots toggle off


def test_the_integration_page_shows_the_greeting_bot_and_saves_its_settings(app_env, other_member, fake_chatwoot):
    view = desk(app_env, fake_chatwoot, other_member, inboxes=False, bots=True)
    at = detail(view.id)
    shown = texts(at)
    assert "Greeting bot" in shown and "Auto-create inboxes is off" in shown
    assert "PUBLIC_BASE_URL is not set" in shown  # the receiver cannot be reached: said on the page
    assert "Last event received: never" in shown
    [welcome] = [t for t in at.text_area if t.label == "Welcome message"]
    welcome.input("Welcome to <b>Acme</b>!")
    text_input(at, "Hand-off keyword").input("human")
    button(at, "Save bot settings").click()
    at.run()
    assert not at.exception, at.exception
    settings = app_env.bots.status(other_member, view.id).settings
    assert (settings.welcome_message, settings.handoff_keyword) == ("Welcome to <b>Acme</b>!", "human")
    assert not [r for r in fake_chatwoot.requests if r.method != "GET"]


def test_with_the_bots_toggle_off_the_integration_page_says_why_nothing_is_created(
    app_env, other_member, fake_chatwoot
):
    view = desk(app_env, fake_chatwoot, other_member, inboxes=True, bots=False)
    at = detail(view.id)
    shown = texts(at)
    assert "Greeting bot" in shown and "Auto-create bots toggle is off" in shown
    assert "Save bot settings" not in [b.label for b in at.button]


def detail(integration_id: int):
    at = sign_in("bob", "bob-password-12")
    at.switch_page(DETAIL)
    at.query_params["id"] = str(integration_id)
    at.run()
    assert not at.exception, at.exception
    return at


def test_the_integration_page_says_which_conversations_never_reached_the_receiver(
    app_env, other_member, fake_chatwoot, monkeypatch
):
    from datetime import timedelta
    from urllib.parse import urlsplit

    from sqlalchemy import select

    import core.chatwoot.bots as bots_module
    from core.models import ChatwootBot, ChatwootBotConversation, utcnow

    public = "https://console.example.com"
    monkeypatch.setenv("PUBLIC_BASE_URL", public)
    app_env.bots.public_base_url = public
    view = desk(app_env, fake_chatwoot, other_member, inboxes=True, bots=True)
    inbox, _ = app_env.inboxes.ensure_website_inbox(other_member, view.id, "https://blog.acme.test/", "#1F93FF", "", "")
    assert fake_chatwoot.agent_bots, app_env.bots.status(other_member, view.id)
    [bot] = fake_chatwoot.agent_bots.values()
    secret = urlsplit(bot.outgoing_url).path.split("/")[4]
    later = utcnow() + timedelta(minutes=10)  # past the grace a late delivery gets
    monkeypatch.setattr(bots_module, "utcnow", lambda: later)
    fake_chatwoot.add_conversation(1, inbox.id, visitor_message="Hello?")
    fake_chatwoot.add_conversation(1, inbox.id, visitor_message="Anyone?")
    at = detail(view.id)
    shown = texts(at)
    assert f"Chatwoot has 2 conversations in {inbox.name} since " in shown
    assert "never reached the receiver at https://console.example.com/bots/chatwoot/" in shown
    assert "Set PUBLIC_BASE_URL" in shown and secret not in shown
    listed = len(fake_chatwoot.requests_to("/api/v1/accounts/1/conversations", "GET"))
    at.run()  # shown again: the check is reused, not asked again
    assert len(fake_chatwoot.requests_to("/api/v1/accounts/1/conversations", "GET")) == listed
    with app_env.factory.begin() as session:  # what the receiver records when Chatwoot reaches it
        bot_row = session.scalar(select(ChatwootBot))
        assert bot_row is not None
        for conversation in fake_chatwoot.conversations.values():
            session.add(ChatwootBotConversation(bot_id=bot_row.id, conversation_id=conversation.display_id))
    button(at, "Check delivery again").click()
    at.run()
    assert not at.exception, at.exception
    assert "Chatwoot delivered every recent conversation" in texts(at)
    assert len(fake_chatwoot.requests_to("/api/v1/accounts/1/conversations", "GET")) > listed
