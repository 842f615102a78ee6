"""Activity: who did what to which integration, when, with what outcome. Filters and a CSV download."""

from datetime import UTC, datetime, time, timedelta

import streamlit as st

from core import activity, audit
from core.words import count
from ui import state
from ui.tables import rows_table

ctx, actor = state.context(), state.actor()
st.title("Activity")
st.caption(
    "Everything done in the console, newest first."
    if actor.is_admin
    else "What you did, and what happened to your integrations."
)

actors, actions = audit.choices(ctx.factory, actor)
CHOICES = 500  # beyond this many integrations, pick one by its number instead of from a list
integrations = ctx.integrations.names(actor, limit=CHOICES + 1)
ANY = "Any"

with st.container(border=True):
    cols = st.columns(4)
    who = cols[0].selectbox("Who", [ANY, *actors]) if actor.is_admin else ANY
    action = cols[1].selectbox(
        "Action", [ANY, *actions], format_func=lambda a: a if a == ANY else activity.action_label(a)
    )
    if len(integrations) <= CHOICES:
        integration = cols[2].selectbox(
            "Integration", [ANY, *integrations], format_func=lambda i: i if i == ANY else f"{integrations[i]} (#{i})"
        )
    else:
        number = cols[2].number_input("Integration # (0: any)", min_value=0, step=1, value=0)
        integration = int(number) or ANY
    today = datetime.now(UTC).date()
    period = cols[3].date_input("Between", (today - timedelta(days=30), today), max_value=today)

since = until = None
if isinstance(period, tuple) and len(period) == 2:
    since = datetime.combine(period[0], time.min)
    until = datetime.combine(period[1], time.min) + timedelta(days=1)

events = audit.search(
    ctx.factory,
    actor,
    audit.AuditFilter(
        actor=None if who == ANY else who,
        action=None if action == ANY else action,
        integration_id=integration if isinstance(integration, int) else None,  # or ANY
        since=since,
        until=until,
        limit=audit.MAX_ROWS,
    ),
)
if not events:
    st.info("Nothing matches these filters yet. Widen the dates or clear a filter.")
    st.stop()
names = ctx.integrations.names(actor, sorted({e.integration_id for e in events if e.integration_id}))
providers = {p.key: p.name for p in ctx.integrations.catalog}
OUTCOMES = {"success": "Done", "failure": "Failed", "denied": "Refused"}

frame = rows_table(
    [
        {
            # The sentence first: on a phone it is the column that shows without scrolling sideways.
            "What happened": activity.sentence(
                e.action, e.outcome, e.details, names.get(e.integration_id or 0), e.integration_id, providers
            ),
            "When (UTC)": e.at,
            "Who": e.actor,
            "Integration": names.get(e.integration_id, f"#{e.integration_id}") if e.integration_id else "",
            "Outcome": OUTCOMES.get(e.outcome, e.outcome.capitalize()),
            "Details": activity.details_text(e.details, providers),
        }
        for e in events
    ]
)
st.dataframe(
    frame,
    hide_index=True,
    width="stretch",
    column_config={
        "When (UTC)": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm:ss"),
        "What happened": st.column_config.TextColumn(width="large"),
    },
)
shown = count(len(events), "event") + (f", the newest {audit.MAX_ROWS}" if len(events) == audit.MAX_ROWS else "")
st.caption(shown)
st.download_button(
    "Download CSV", audit.to_csv(events), file_name="activity.csv", mime="text/csv", icon=":material/download:"
)
