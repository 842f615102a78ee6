"""Overview: the four statistics, and integrations by provider and status."""

import pandas as pd
import streamlit as st

from ui import state

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

rows = ctx.integrations.counts_by_provider_and_status(actor)
if not rows:
    st.info("No integrations yet. Open **Integrations** to connect a Chatwoot account or another CRM.")
    st.page_link("app_pages/integrations.py", label="Go to Integrations", icon=":material/hub:")
    st.stop()

frame = pd.DataFrame(rows, columns=["Provider", "Status", "Count"])
table = frame.pivot_table(index="Provider", columns="Status", values="Count", aggfunc="sum", fill_value=0)
for status in ("connected", "error", "unknown"):
    if status not in table.columns:
        table[status] = 0
table = table[["connected", "error", "unknown"]].rename(
    columns={"connected": "Connected", "error": "Error", "unknown": "Not tested"}
)
table["Total"] = table.sum(axis=1)

left, right = st.columns([2, 3])
with left:
    st.subheader("By provider and status")
    st.dataframe(table, width="stretch")
with right:
    st.subheader("Chart")
    st.bar_chart(table.drop(columns="Total"), color=["#2e9e5b", "#d64545", "#9aa0a6"], stack=True)

if stats.error:
    st.warning(f"{stats.error} integration(s) failed their last test. Open **Integrations** to see why.")
if stats.stale:
    st.info(
        f"{stats.stale} active integration(s) have not been checked for {ctx.settings.stale_after_hours:g} hours. "
        "Use **Check all** on the Integrations page, or schedule `python manage.py integrations check-all`."
    )
