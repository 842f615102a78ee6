"""Issue 10, item 6: an open tab must not keep working after its session ends or its person changes.

Deferred downloads (a callable passed as st.download_button's data) and widget callbacks run without
Home.py's session check: Streamlit calls a deferred download on a worker thread when it is clicked, and
a callback before the page's script. Each re-reads the session, the account and its role from the
database at that moment (ui.state).
"""

from __future__ import annotations

import pytest

from tests.app.conftest import open_page, sign_in

CHATWOOT = {"baseUrl": "https://acme.chatwoot.test", "accountId": "1", "apiKey": "cw-stale-tab-secret-1"}


def admins_export_tab(app_env, admin, member, deferred):
    app_env.integrations.create(member, "Alice's CRM", "CHATWOOT", CHATWOOT)
    app_env.integrations.create(admin, "Root's CRM", "CHATWOOT", CHATWOOT)
    at = open_page(sign_in("root", "admin-password-1"), "app_pages/integrations.py")
    assert [b.proto.label for b in at.get("download_button") if b.proto.deferred_file_id][:2] == [
        "Export CSV",
        "Export JSON",
    ]
    export = deferred["integrations.csv"]
    assert "Alice's CRM" in export()  # while the session is live, the admin exports everyone's
    return at, export


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda ctx, at: ctx.users.set_active(None, "root", False), id="deactivated"),
        pytest.param(lambda ctx, at: ctx.users.set_role(None, "root", "member"), id="demoted"),
        pytest.param(lambda ctx, at: ctx.users.reset_password(None, "root", "a-new-password-9"), id="reset"),
        pytest.param(
            lambda ctx, at: ctx.sessions.revoke_handle(at.session_state["session_handle"]), id="signed-out-elsewhere"
        ),
    ],
)
def test_a_deferred_export_re_checks_the_session_when_it_runs(app_env, admin, member, deferred, change):
    # A second administrator, so root may be demoted or deactivated (the last one never can be).
    app_env.users.create(None, "carol", "Carol Admin", "carol@example.com", "carol-password-12", "admin", "STARTER")
    at, export = admins_export_tab(app_env, admin, member, deferred)
    change(app_env, at)  # after the page rendered, before the click
    data = export()
    assert "Alice's CRM" not in data and "Root's CRM" not in data  # nothing was exported
    assert "Nothing was done" in data  # only the refusal sentence
    assert "\n" not in data.strip()


def test_a_deferred_export_of_a_signed_out_tab_gives_nothing(app_env, admin, member, deferred):
    at, export = admins_export_tab(app_env, admin, member, deferred)
    [sign_out] = [b for b in at.sidebar.button if b.label == "Sign out"]
    export_json = deferred["integrations.json"]
    sign_out.click()
    at.run()
    for data in (export(), export_json()):
        assert "CRM" not in data and "Nothing was done" in data
