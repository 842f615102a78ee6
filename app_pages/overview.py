"""Overview: the four statistics, and integrations by provider and status."""

import pandas as pd
import streamlit as st

from core.words import count, verb
from ui import health, state

ctx, actor = state.context(), state.actor()
st.title("Overview")
st.caption("All integrations" if actor.is_admin else "Your integrations")

stats = ctx.integrations.stats(actor)
cols = st.columns(5)
cols[0].metric("Total", stats.total)
cols[1].metric("Active", stats.active)
cols[2].metric("Inactive", stats.inactive)
cols[3].metric("With errors", stats.error)
cols[4].metric("Stale", stats.stale, help=f"Active, and not checked for {ctx.settings.stale_after_hours:g} hours.")

if stats.total:
    st.subheader("Health")
    health.counts_with_links(ctx.integrations.health_counts(actor))  # each opens the list filtered by it
    health.incidents_link(ctx, actor)

rows = ctx.integrations.counts_by_provider_and_status(actor)
if not rows:
    st.info("No integrations yet. Open **Integrations** to connect a Chatwoot account or another CRM.")
    st.page_link("app_pages/integrations.py", label="Go to Integrations", icon=":material/hub:")
    st.stop()

LABELS = {"connected": "Connected", "error": "Error", "unknown": "Not tested"}
COLORS = {"Connected": "#2e9e5b", "Error": "#d64545", "Not tested": "#9aa0a6"}
counts: dict[str, dict[str, int]] = {}
for provider, status, n in rows:
    per_status = counts.setdefault(provider, dict.fromkeys(COLORS, 0))
    per_status[LABELS.get(status, "Not tested")] += n
table = pd.DataFrame.from_dict(counts, orient="index", columns=list(COLORS))
table.index.name = "Provider"
table["Total"] = table.sum(axis=1)

left, right = st.columns([2, 3])
with left:
    st.subheader("By provider and status")
    st.dataframe(table, width="stretch")
with right:
    st.subheader("Chart")
    # A plain Vega-Lite spec: st.bar_chart builds and validates one through Altair, which costs more
    # than the rest of this page together.
    long = [{"Provider": p, "Status": k, "Count": n} for p, per in counts.items() for k, n in per.items() if n]
    st.vega_lite_chart(
        pd.DataFrame(long),
        {
            "mark": {"type": "bar", "tooltip": True},
            "encoding": {
                "x": {"field": "Provider", "type": "nominal", "title": None, "axis": {"labelAngle": 0}},
                "y": {"field": "Count", "type": "quantitative", "stack": True, "title": "Integrations"},
                "color": {
                    "field": "Status",
                    "type": "nominal",
                    "title": None,
                    "scale": {"domain": list(COLORS), "range": list(COLORS.values())},
                    "legend": {"orient": "bottom"},
                },
            },
        },
        width="stretch",
    )

if stats.error:
    st.warning(
        f"{count(stats.error, 'integration')} failed {verb(stats.error, 'its', 'their')} last test. "
        "Open **Integrations** to see why."
    )
if stats.stale:
    st.info(
        f"{count(stats.stale, 'active integration')} {verb(stats.stale, 'has', 'have')} not been checked for "
        f"{ctx.settings.stale_after_hours:g} hours. "
        "Use **Check all** on the Integrations page, or schedule `python manage.py integrations check-all`."
    )
