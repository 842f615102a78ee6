"""How a health state looks (colour and icon), and the counts per state linking to the filtered list."""

from __future__ import annotations

from typing import Literal

import streamlit as st

from core.integrations.health import Health

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
    columns = st.columns(len(ORDER))
    for column, health in zip(columns, ORDER, strict=True):
        column.page_link(
            LIST_PAGE,
            label=f"{health.label}: {counts.get(health.value, 0):,}",
            icon=STYLE[health][1],
            query_params={"health": health.value},
            help=f"List the integrations whose health is {health.label.lower()}.",
        )
    # Open incidents: not counted here yet. Incidents are another change (their own table and page); their
    # count and its link to the list of open incidents belong beside these links.
