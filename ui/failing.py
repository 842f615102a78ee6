"""A failing list grouped by cause: each cause once, with what to do, then a link to each of its
integrations' pages (Overview and Statistics)."""

from __future__ import annotations

from collections.abc import Iterable

import streamlit as st

from core.integrations.failing import HasCause, by_cause
from core.words import count
from ui.text import esc

DETAIL_PAGE = "app_pages/integration.py"
LIST_PAGE = "app_pages/integrations.py"
SHOWN_PER_CAUSE = 10  # links per cause; the rest are one link away, on the list filtered by "error"


def grouped(rows: Iterable, total: int) -> None:
    """rows: FailingRow or statistics.ErrorRow (an id, name, provider_name, check_class, message)."""
    causes = by_cause(rows)  # type: ignore[arg-type]
    for number, cause in enumerate(causes):
        with st.expander(f"{esc(cause.label)} · {count(len(cause.rows), 'integration')}", expanded=number == 0):
            st.markdown(f"{esc(cause.sentence)} {esc(cause.next_step)}")
            for row in cause.rows[:SHOWN_PER_CAUSE]:
                link(row)
            if len(cause.rows) > SHOWN_PER_CAUSE:
                st.caption(f"And {count(len(cause.rows) - SHOWN_PER_CAUSE, 'other')} of this cause.")
    shown = sum(len(c.rows) for c in causes)
    if total > shown:
        st.page_link(
            LIST_PAGE,
            label=f"All {count(total, 'integration')} in error, on the Integrations list",
            icon=":material/list:",
            query_params={"status": "error"},
        )


def link(row: HasCause) -> None:
    name = getattr(row, "name", f"#{row.id}")
    provider = getattr(row, "provider_name", "")
    st.page_link(
        DETAIL_PAGE,
        label=esc(f"{name} · {provider}" if provider else name),
        icon=":material/open_in_new:",
        query_params={"id": str(row.id)},
        help=esc(str(getattr(row, "message", "") or "Open this integration's page.")[:300]),
    )
