"""How a health state looks (colour and icon), and the counts per state linking to the filtered list."""

from __future__ import annotations

from typing import Literal

import streamlit as st

from app_context import AppContext
from core.audit import Actor
from core.integrations.health import Health
from core.models import utcnow
from ui import check_all

LIST_PAGE = "app_pages/integrations.py"
Colour = Literal["green", "orange", "red", "violet", "gray"]
STYLE: dict[Health, tuple[Colour, str]] = {
    Health.CONNECTED: ("green", ":material/check_circle:"),
    Health.DEGRADED: ("orange", ":material/warning:"),
    Health.FAILING: ("red", ":material/error:"),
    Health.NEEDS_RECONNECT: ("violet", ":material/key_off:"),
    Health.PAUSED: ("gray", ":material/pause_circle:"),
    Health.UNKNOWN: ("gray", ":material/help:"),
}
ORDER = (Health.FAILING, Health.NEEDS_RECONNECT, Health.DEGRADED, Health.PAUSED, Health.UNKNOWN, Health.CONNECTED)


def badge(health: Health) -> None:
    colour, icon = STYLE[health]
    st.badge(health.label, icon=icon, color=colour)


def counts_with_links(counts: dict[str, int]) -> None:
    """One link per health state, "Failing: 3", each opening the Integrations list filtered by that state."""
    row = st.container(horizontal=True, wrap=True, gap="medium")  # wraps on a phone instead of one a line
    for health in ORDER:
        row.page_link(
            LIST_PAGE,
            label=f"{health.label}: {counts.get(health.value, 0):,}",
            icon=STYLE[health][1],
            query_params={"health": health.value},
            help=f"List the integrations whose health is {health.label.lower()}.",
            width="content",
        )


def incidents_link(ctx: AppContext, actor: Actor) -> None:
    """Administrators: how many outages (incidents) are open, linking to the Alerts page that lists them."""
    if not actor.is_admin:
        return
    count = len(ctx.subscriptions.open_incidents(actor))
    st.page_link(
        "app_pages/alerts.py",
        label=f"Open incidents: {count}",
        icon=":material/crisis_alert:" if count else ":material/verified:",
        help="Many integrations of one provider or one host failing at once; the Alerts page lists them.",
    )


def engine_status(ctx: AppContext) -> None:
    """The scheduler's heartbeat: when it last planned, or a warning when no worker seems to run."""
    if warning := check_all.engine_warning(ctx):
        st.warning(warning)
        return
    beat = ctx.scheduler.heartbeat()
    if beat.at is not None:
        seconds = max(0, round((utcnow() - beat.at).total_seconds()))
        st.caption(
            f"Task engine: the scheduler last planned checks {seconds} s ago (it runs every "
            f"{ctx.settings.engine_tick_seconds} s on one worker at a time)."
        )
