"""The "Greeting bot" section of a Chatwoot integration's page, and the widget page's "Create a website
inbox for this site". The work is core/chatwoot/bots.py and inboxes.py; everything remote or typed is
shown through esc."""

from __future__ import annotations

from zoneinfo import available_timezones

import streamlit as st

from core.audit import Actor
from core.chatwoot.bot_delivery import DeliveryCheck
from core.chatwoot.greeting import DAY_NAMES, BotSettings
from core.chatwoot.helpdesk import PROVIDER_KEY
from core.errors import ConsoleError
from core.integrations.service import IntegrationView
from ui import state
from ui.chatwoot import ActorKey, actor_key
from ui.text import esc

ZONES = sorted(available_timezones() | {"UTC"})
DELIVERY_TTL = 120  # seconds a delivery check is reused when the section is shown again


# The bot settings form's label of each field the service's ValidationError names.
BOT_LABELS = {
    "welcome_message": "Welcome message",
    "out_of_hours_message": "Out-of-hours reply",
    "handoff_keyword": "Hand-off keyword",
    "office_days": "Office days",
    "office_from": "From (HH:MM)",
    "office_to": "To (HH:MM)",
    "timezone": "Time zone",
}
# The inbox form's label of each field the service's ValidationError names.
INBOX_LABELS = {
    "website_url": "Website address",
    "colour": "Widget colour",
    "title": "Welcome title",
    "tagline": "Welcome tagline",
}


def _when(at) -> str:
    return f"{at:%Y-%m-%d %H:%M} UTC" if at else "never"


def create_bot(fresh: Actor, integration_id: int) -> None:
    try:
        status = state.context().bots.ensure_bot(fresh, integration_id)
    except ConsoleError as exc:
        state.flash(str(exc), ":material/error:")
        return
    state.flash(f"The greeting bot is Chatwoot agent bot #{status.chatwoot_bot_id}.", ":material/smart_toy:")


def self_test(fresh: Actor, integration_id: int) -> None:
    try:
        status = state.context().bots.self_test(fresh, integration_id)
    except ConsoleError as exc:
        state.flash(str(exc), ":material/error:")
        return
    state.flash(
        status.self_test_message or "", ":material/check_circle:" if status.self_test_ok else ":material/error:"
    )


@st.cache_data(ttl=DELIVERY_TTL, show_spinner=False, max_entries=500)
def _delivery(actor: ActorKey, integration_id: int) -> DeliveryCheck:
    """The delivery check (a page or two of Chatwoot's conversations per inbox), reused for a while."""
    try:
        return state.context().bots.delivery_check(Actor(*actor), integration_id)
    except ConsoleError as exc:
        return DeliveryCheck(None, str(exc))


def check_delivery_again(fresh: Actor, integration_id: int) -> None:
    _delivery.clear(actor_key(fresh), integration_id)


def delivery(actor: Actor, integration_id: int) -> None:
    """Whether Chatwoot delivered the bot's recent conversations to the receiver, and a button to ask again."""
    with st.spinner("Checking what Chatwoot delivered to the receiver…"):
        found = _delivery(actor_key(actor), integration_id)
    if found.delivered is False:
        st.warning(esc(found.sentence), icon=":material/cloud_off:")
    elif found.delivered:
        st.success(esc(found.sentence), icon=":material/cloud_done:")
    else:
        st.info(esc(found.sentence), icon=":material/info:")
    st.button(
        "Check delivery again",
        key="bot-delivery",
        icon=":material/refresh:",
        on_click=state.guarded(check_delivery_again, actor),
        args=(integration_id,),
        help="Compares the recent conversations of the bot's inboxes in Chatwoot with what the receiver got.",
    )


def render(ctx, actor: Actor, view: IntegrationView) -> None:
    """The section, for the owner of a Chatwoot integration (nothing for others)."""
    if view.provider != PROVIDER_KEY or view.owner != actor.username:
        return
    st.subheader("Greeting bot")
    try:
        status = ctx.bots.status(actor, view.id)
    except ConsoleError as exc:
        st.caption(esc(exc))
        return
    st.write(esc(status.state_text))
    if not status.auto_create_inboxes:
        st.caption(
            esc(
                "Auto-create inboxes is off: the console creates no website inbox in this Chatwoot account, so the "
                "bot answers only inboxes you attach it to in Chatwoot (Settings > Inboxes > Bot configuration)."
            )
        )
    if not status.auto_create_bots:
        return
    if status.reachability:
        st.warning(esc(status.reachability), icon=":material/cloud_off:")
    if status.chatwoot_bot_id is not None:
        delivery(actor, view.id)
    left, right = st.columns(2)
    with left:
        st.caption(f"Receiver: {esc(status.receiver_address or 'not created yet')}")
        st.caption(
            f"Last event received: {esc(_when(status.last_event_at))}"
            + (f" ({esc(status.last_event_kind)})" if status.last_event_kind else "")
        )
        if status.last_error:
            st.caption(f"Last problem: {esc(status.last_error)}")
    with right:
        if status.self_test_at:
            verdict = "passed" if status.self_test_ok else "failed"
            st.caption(
                f"Self-test {verdict} at {esc(_when(status.self_test_at))}: {esc(status.self_test_message or '')}"
            )
        a, b = st.columns(2)
        if status.chatwoot_bot_id is None:
            a.button(
                "Create the bot in Chatwoot",
                key="bot-create",
                icon=":material/smart_toy:",
                on_click=state.guarded(create_bot, actor),
                args=(view.id,),
            )
        b.button(
            "Run the self-test",
            key="bot-self-test",
            icon=":material/network_check:",
            on_click=state.guarded(self_test, actor),
            args=(view.id,),
            help="Posts a signed test event to the receiver's public address and checks this console answers it.",
        )
    settings_form(ctx, actor, view, status.settings)


def settings_form(ctx, actor: Actor, view: IntegrationView, current: BotSettings) -> None:
    with st.form("bot-settings"):
        welcome = st.text_area("Welcome message", value=current.welcome_message, max_chars=1000)
        keyword = st.text_input(
            "Hand-off keyword",
            value=current.handoff_keyword,
            max_chars=100,
            help="A visitor's message with this word opens the conversation for agents at once; any answer to "
            "the welcome does so too.",
        )
        hours = st.toggle("Office hours", value=current.office_hours_enabled)
        zone = st.selectbox("Time zone", ZONES, index=ZONES.index(current.timezone) if current.timezone in ZONES else 0)
        days = st.multiselect(
            "Office days", list(range(7)), default=list(current.office_days), format_func=lambda d: DAY_NAMES[d]
        )
        a, b = st.columns(2)
        start = a.text_input("From (HH:MM)", value=current.office_from, max_chars=5)
        end = b.text_input("To (HH:MM)", value=current.office_to, max_chars=5)
        away = st.text_area("Out-of-hours reply", value=current.out_of_hours_message, max_chars=1000)
        submitted = st.form_submit_button("Save bot settings", icon=":material/save:")
    if not submitted:
        st.caption(esc(current.hours_text()))
        return
    wanted = BotSettings(welcome, away, keyword, hours, zone, tuple(days), start.strip(), end.strip())
    if not state.attempt(lambda: ctx.bots.save_settings(actor, view.id, wanted), BOT_LABELS)[0]:
        return
    state.flash("Saved the greeting bot's settings.", ":material/save:")
    st.rerun()


# ----- the widget page's offer ------------------------------------------------------------------------


def inbox_offer(ctx, actor: Actor, view: IntegrationView, on_created, expanded: bool) -> None:
    """ "Create a website inbox for this site", or why the console creates none."""
    try:
        allowed, why = ctx.inboxes.auto_create_allowed(actor, view.id)
    except ConsoleError as exc:
        st.caption(esc(exc))
        return
    if not allowed:
        st.caption(esc(why or ""))
        return
    with st.expander("Create a website inbox for this site", expanded=expanded, icon=":material/add_circle:"):
        with st.form("inbox-create"):
            url = st.text_input("Website address", placeholder="https://www.example.com", max_chars=500)
            colour = st.color_picker("Widget colour", value="#1F93FF")
            title = st.text_input("Welcome title", max_chars=255, placeholder="Hi there!")
            tagline = st.text_input("Welcome tagline", max_chars=255, placeholder="We usually reply in minutes.")
            submitted = st.form_submit_button("Create a website inbox for this site", icon=":material/add:")
        st.caption(
            "An inbox of the same website is reused, never duplicated. With Auto-create bots on, the greeting bot "
            "answers the new inbox."
        )
    if not submitted:
        return
    ok, ensured = state.attempt(
        lambda: ctx.inboxes.ensure_website_inbox(actor, view.id, url, colour, title, tagline), INBOX_LABELS
    )
    if not ok:
        return
    inbox, created = ensured
    on_created(actor, view)
    what = "Created the website inbox" if created else "This site already has the website inbox"
    state.flash(f"{what} {inbox.name}.", ":material/web:")
    st.rerun()
