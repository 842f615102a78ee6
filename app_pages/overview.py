"""Overview: the counts (each opening the Integrations list filtered by it), health, integrations by
provider and status, and the failing ones grouped by cause, each linking to its page."""

import streamlit as st

from core.words import count, verb
from ui import failing, health, state
from ui.tables import rows_table

LIST_PAGE = "app_pages/integrations.py"
ctx, actor = state.context(), state.actor()
st.title("Overview")
st.caption("All integrations" if actor.is_admin else "Your integrations")

stats = ctx.integrations.stats(actor)
# (label, value, the list's filter, what the link says); the list reads status, provider, q and health.
TILES = (
    ("Total", stats.total, {}, "List every integration."),
    ("Active", stats.active, {"status": "active"}, "List the integrations checked on a schedule."),
    ("Inactive", stats.inactive, {"status": "inactive"}, "List the paused integrations (not checked on a schedule)."),
    ("With errors", stats.error, {"status": "error"}, "List the integrations whose last test failed."),
    (
        "Stale",
        stats.stale,
        {"status": "stale"},
        f"List the active integrations not checked for {ctx.settings.stale_after_hours:g} hours.",
    ),
)
# A wrapping row, not st.columns: columns stack one tile per line on a phone; this keeps two a line there.
with st.container(horizontal=True, wrap=True):
    for label, value, params, help_text in TILES:
        with st.container(border=True, key=f"tile-{label.lower().replace(' ', '-')}"):
            st.metric(label, f"{value:,}")
            st.page_link(LIST_PAGE, label="Open", icon=":material/list:", query_params=params, help=help_text)

if stats.total:
    st.subheader("Health")
    health.counts_with_links(ctx.integrations.health_counts(actor))  # each opens the list filtered by it
    health.incidents_link(ctx, actor)

rows = ctx.integrations.counts_by_provider_and_status(actor)
if not rows:
    st.info("No integrations yet. Open **Integrations** to connect a Chatwoot account or another CRM.")
    st.page_link(LIST_PAGE, label="Go to Integrations", icon=":material/hub:")
    st.stop()

if stats.error:
    st.subheader(f"Failing: {count(stats.error, 'integration')}, by cause")
    failing_rows, failing_total = ctx.integrations.failing(actor, limit=100)
    failing.grouped(failing_rows, failing_total)
if stats.stale:
    st.info(
        f"{count(stats.stale, 'active integration')} {verb(stats.stale, 'has', 'have')} not been checked for "
        f"{ctx.settings.stale_after_hours:g} hours. "
        "Use **Check all** on the Integrations page, or schedule `python manage.py integrations check-all`."
    )

LABELS = {"connected": "Connected", "error": "Error", "unknown": "Not tested"}
COLORS = {"Connected": "#2e9e5b", "Error": "#d64545", "Not tested": "#9aa0a6"}
counts: dict[str, dict[str, int]] = {}
keys = {p.name: p.key for p in ctx.integrations.catalog}  # the rows name providers; the list filters by key
for provider, status, n in rows:
    per_status = counts.setdefault(provider, dict.fromkeys(COLORS, 0))
    per_status[LABELS.get(status, "Not tested")] += n
totals = {provider: sum(per_status.values()) for provider, per_status in counts.items()}

left, right = st.columns([2, 3])
with left:
    st.subheader("By provider and status")
    st.dataframe(
        rows_table([{"Provider": p, **per_status, "Total": totals[p]} for p, per_status in counts.items()]),
        hide_index=True,
        width="stretch",
        column_config={"Provider": st.column_config.TextColumn(pinned=True)},
    )
    st.caption("Open one provider's integrations:")
    for provider in counts:
        st.page_link(
            LIST_PAGE,
            label=f"{provider}: {count(totals[provider], 'integration')}",
            icon=":material/filter_list:",
            query_params={"provider": keys.get(provider, provider)},
        )
with right:
    st.subheader("Integrations per provider, by last test result")
    # A plain Vega-Lite spec: st.bar_chart builds and validates one through Altair, which costs more
    # than the rest of this page together.
    long = [{"Provider": p, "Status": k, "Count": n} for p, per in counts.items() for k, n in per.items() if n]
    st.vega_lite_chart(
        rows_table(long, ("Provider", "Status", "Count")),
        {
            "mark": {"type": "bar", "tooltip": True},
            "encoding": {
                "x": {"field": "Provider", "type": "nominal", "title": None, "axis": {"labelAngle": 0}},
                "y": {"field": "Count", "type": "quantitative", "stack": True, "title": "Integrations"},
                "color": {
                    "field": "Status",
                    "type": "nominal",
                    "title": "Last test",
                    "scale": {"domain": list(COLORS), "range": list(COLORS.values())},
                    "legend": {"orient": "bottom"},
                },
            },
        },
        width="stretch",
    )
