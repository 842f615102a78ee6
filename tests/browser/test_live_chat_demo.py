"""The "Live-chat demo" template end to end in real Chromium against a real `streamlit run` and the stateful
fake Chatwoot: a signed-in administrator connects Chatwoot, opens Templates, applies Live-chat demo from
one form, watches every step finish and gets the widget script. The fake then holds one website inbox
with the greeting bot attached, the script is that inbox's own website-token script, and a Chatwoot
agent-bot event posted to the bot's outgoing URL (the console's receiver) drives the welcome reply and a
hand-off. Running the template again creates nothing new."""

from __future__ import annotations

import time

import pytest
import requests

from core.chatwoot.greeting import BotSettings
from core.chatwoot.widget import WidgetSettings, build_script
from tests.browser.conftest import started_app
from tests.browser.helpers import add_chatwoot, first_admin_password, idle, sign_in_as_admin
from tests.fakes.chatwoot import FakeChatwoot, add_acme_with_ada
from ui.text import WORD_JOINER

pytestmark = [
    pytest.mark.browser,
    pytest.mark.timeout(360),
]  # two runs of four steps; 100 s alone, far more on a loaded machine
ADMIN_TOKEN = "cw-demo-admin-token-42"
SITE = "https://www.shop.example"
STEPS = ("Chatwoot integration", "Website inbox", "Greeting bot", "Chat widget")


@pytest.fixture
def console(tmp_path):
    yield from started_app(tmp_path, public=True)


@pytest.fixture
def chatwoot():
    with FakeChatwoot() as fake:
        add_acme_with_ada(fake, ADMIN_TOKEN)
        yield fake
        assert not fake.contract_violations, fake.contract_violations


def wait_until(predicate, what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"{what} did not happen within {seconds} s")


def connect_chatwoot(page, console, chatwoot) -> None:
    page.goto(console["url"] + "/integrations")
    sign_in_as_admin(page, first_admin_password(console["log"]), "Integrations", exact=True)
    add_chatwoot(page, chatwoot.url, ADMIN_TOKEN)


def apply_live_chat_demo(page, console) -> str:
    """Open Templates, fill the one form, preview, run; wait for every step; the script shown."""
    page.goto(console["url"] + "/templates")
    page.get_by_role("heading", name="Templates", exact=True).wait_for()
    idle(page)
    page.get_by_text("A website inbox with the greeting bot attached").wait_for()  # Live-chat demo: the first
    address = page.get_by_role("textbox", name="Website address")
    address.fill(SITE)
    address.press("Enter")
    idle(page)
    page.get_by_role("button", name="Preview").click()
    page.get_by_text("These steps will run").wait_for()
    step = f"Create (or find) the website inbox for {SITE}, colour #1F93FF."
    # The preview's heading can be drawn a moment before its list of steps (one script run, two deltas).
    wait_until(lambda: step in shown(page), "the preview listing the inbox step")
    return run(page, 1)


def run(page, number: int) -> str:
    """Click Run; wait until run #number has done every step; the script it shows."""
    page.get_by_role("button", name="Run", exact=True).click()
    page.get_by_role("heading", name=f"Run #{number}: Live-chat demo").wait_for(timeout=60_000)
    page.get_by_text("Every step is done.").wait_for(timeout=60_000)
    page.get_by_text("4 of 4 steps done (done)").wait_for()
    # The page reloads once when the run ends, so its results are read once they are all drawn again.
    wait_until(
        lambda: all(shown(page).count(title) >= 3 for title in STEPS),  # the form, the preview and the result
        "every step's title in the form, the preview and the run's result",
    )
    return page.get_by_test_id("stCode").last.inner_text().strip()


def screenshots(page, folder, width: str) -> None:
    """The preview, and the run's results with the script (Streamlit scrolls inside its main block, so a
    full-page shot would show only the top: each part is scrolled into view)."""
    page.get_by_role("heading", name="These steps will run").scroll_into_view_if_needed()
    page.screenshot(path=str(folder / f"live-chat-demo-{width}-preview.png"))
    page.get_by_test_id("stCode").last.scroll_into_view_if_needed()
    page.screenshot(path=str(folder / f"live-chat-demo-{width}-result.png"))


def shown(page) -> str:
    """The page's text as a person reads it: without the invisible word joiners ui.text.esc puts after
    ':', '@' and 'www' (they keep remote text from becoming links)."""
    return page.get_by_test_id("stMain").inner_text().replace(WORD_JOINER, "")


def chatwoot_event(message_id: int, conversation_id: int, inbox_id: int, content: str) -> dict:
    """A message_created event as Chatwoot's AgentBotListener posts it to the bot's outgoing URL."""
    return {
        "event": "message_created",
        "id": message_id,
        "content": content,
        "content_type": "text",
        "content_attributes": {},
        "message_type": "incoming",
        "private": False,
        "created_at": "2026-12-01T10:00:00.000Z",
        "source_id": None,
        "additional_attributes": {},
        "sender": {"id": 7, "name": "Visitor", "type": "contact"},
        "account": {"id": 1, "name": "Acme Support"},
        "conversation": {"id": conversation_id, "status": "pending", "inbox_id": inbox_id},
        "inbox": {"id": inbox_id, "name": "www.shop.example"},
    }


def test_live_chat_demo_from_one_form_gives_a_working_widget_with_a_greeting_bot(browser, console, chatwoot):
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    page.set_default_timeout(30_000)
    connect_chatwoot(page, console, chatwoot)

    script = apply_live_chat_demo(page, console)
    screenshots(page, console["tmp"], "1440")
    text = shown(page)
    for line in (
        "Chatwoot integration: Uses Acme helpdesk (Chatwoot account Acme Support).",
        "Website inbox: Created the website inbox www.shop.example",
        "Greeting bot: The greeting bot (#",
        "Chat widget: Saved the widget preset Live-chat demo and made the script for inbox #",
    ):
        assert line in text, line

    # One website inbox, the greeting bot attached to it, pointing at this console's receiver.
    [inbox] = [i for i in chatwoot.inboxes.values() if i.website_url]
    [bot] = chatwoot.agent_bots.values()
    assert inbox.website_url == SITE and inbox.agent_bot_id == bot.id
    assert bot.outgoing_url.startswith(console["url"] + "/bots/chatwoot/")
    secret = bot.outgoing_url.rsplit("/", 1)[1]
    assert secret not in page.content() and bot.access_token not in page.content()
    # The script is the inbox's own: its real website token, on the Chatwoot server's address.
    assert inbox.website_token and inbox.website_token in script
    expected = build_script(chatwoot.url, inbox.website_token, WidgetSettings(position="right", locale="en"))
    assert script == expected.strip()

    # Chatwoot posts a visitor's first message to the bot: the welcome; the answer to it: the hand-off.
    conversation = chatwoot.add_conversation(1, inbox.id)
    answer = requests.post(
        bot.outgoing_url, json=chatwoot_event(501, conversation.display_id, inbox.id, "Hi"), timeout=10
    )
    assert answer.status_code == 200 and answer.json()["result"] in ("queued", "done")
    welcome = BotSettings().welcome_message

    def bot_says() -> list[str]:
        return [m.content for m in chatwoot.messages_in(1, conversation.display_id) if m.sender_type == "agent_bot"]

    wait_until(lambda: bot_says() == [welcome], "the welcome reply")
    assert conversation.status == "pending"
    follow_up = chatwoot_event(502, conversation.display_id, inbox.id, "Where is my order?")
    assert requests.post(bot.outgoing_url, json=follow_up, timeout=10).status_code == 200
    wait_until(lambda: conversation.status == "open", "the hand-off to human agents")
    assert bot_says() == [welcome]
    forged = bot.outgoing_url.rsplit("/", 1)[0] + "/" + "x" * 43
    assert requests.post(forged, json=follow_up, timeout=10).status_code == 404

    # Running it again creates nothing new: the inbox is found, the bot is the same, the script too.
    inbox_posts = len(chatwoot.requests_to("/api/v1/accounts/1/inboxes/", "POST"))
    bot_posts = len(chatwoot.requests_to("/api/v1/accounts/1/agent_bots", "POST"))
    page.set_viewport_size({"width": 390, "height": 844})
    again = run(page, 2)
    wait_until(lambda: "Website inbox: Found the website inbox www.shop.example" in shown(page), "the inbox found")
    screenshots(page, console["tmp"], "390")
    assert again == script
    assert len(chatwoot.requests_to("/api/v1/accounts/1/inboxes/", "POST")) == inbox_posts == 1
    assert len(chatwoot.requests_to("/api/v1/accounts/1/agent_bots", "POST")) == bot_posts == 1
    assert [i.id for i in chatwoot.inboxes.values() if i.website_url] == [inbox.id]
    assert list(chatwoot.agent_bots) == [bot.id] and inbox.agent_bot_id == bot.id
    server_output = console["log"].read_text()
    for hidden in (secret, bot.access_token):
        assert hidden not in server_output and hidden not in page.content()
    context.close()
