"""Statistics (administrators only): every tenant's integrations by tier, provider, type and status,
the integrations in error, and the daily trend of checks and errors, with filters and CSV downloads."""

from datetime import UTC, datetime

import pandas as pd
import streamlit as st

from core.audit import Actor
from core.integrations import statistics
from core.integrations.failing import cause_label
from core.integrations.service import IntegrationService
from core.integrations.statistics import STATUS_LABELS, STATUSES, Filters, StatisticsService
from core.tiers import Tier, tier_label
from core.words import count
from ui import failing, health, state
from ui.tables import rows_table

ctx, actor = state.context(), state.actor()
if not actor.is_admin:
    st.error(
        "Only administrators can see statistics across every tenant. "
        "Your own integrations are on the Overview page; ask an administrator if you need these numbers."
    )
    st.stop()

PERIODS = (7, 30, 90)
COLORS = {"Checks": "#1f77b4", "Errors": "#d64545"}


@st.cache_data(ttl=60, show_spinner="Counting…")
def load_counts(_service: StatisticsService, actor: Actor, filters: Filters):
    """The counts and the integrations in error, read once a minute at most (Refresh reads again)."""
    return _service.counts(actor, filters), _service.errors(actor, filters), datetime.now(UTC)


@st.cache_data(ttl=60, show_spinner="Reading the checks…")
def load_trend(_service: StatisticsService, actor: Actor, filters: Filters, days: int):
    """Cached apart from the counts: changing the period or the status filter does not count again."""
    return _service.trend(actor, filters, days)


@st.cache_data(ttl=60, show_spinner=False)
def load_health(_service: IntegrationService, actor: Actor) -> dict[str, int]:
    """Every tenant's integrations per health state (one grouped read of the health index)."""
    return _service.health_counts(actor)


head, refresh = st.columns([6, 1], vertical_alignment="bottom")
head.title("Statistics")
if refresh.button("Refresh", icon=":material/refresh:", help="Read the numbers again now."):
    load_counts.clear()
    load_trend.clear()
    load_health.clear()

providers = dict(ctx.statistics.providers(actor))


def provider_label(key: str) -> str:
    return providers.get(key, key)


def status_label(status: str) -> str:
    return STATUS_LABELS.get(status, status)


with st.container(border=True):
    cols = st.columns([3, 4, 3, 2])
    tiers = cols[0].multiselect("Tier", [t.name for t in Tier], format_func=tier_label, placeholder="All tiers")
    chosen_providers = cols[1].multiselect(
        "Provider", list(providers), format_func=provider_label, placeholder="All providers"
    )
    statuses = cols[2].multiselect("Status", STATUSES, format_func=status_label, placeholder="All statuses")
    days = cols[3].selectbox("Trend period", PERIODS, index=1, format_func=lambda d: f"Last {d} days")

filters = Filters(tuple(tiers), tuple(chosen_providers), tuple(statuses))
counts, errors, as_of = load_counts(ctx.statistics, actor, filters)
# The status filter does not apply to the trend (a status is today's state, not history).
trend = load_trend(ctx.statistics, actor, Filters(filters.tiers, filters.providers), days)
st.caption(
    f"{'Every tenant' if filters.is_empty else 'Filtered'} · as of {as_of:%H:%M:%S} UTC "
    "(numbers are kept for a minute; Refresh reads them again)"
)

cols = st.columns(4)
cols[0].metric("Total", f"{counts.total:,}")
cols[1].metric("Active", f"{counts.active:,}")
cols[2].metric("In error", f"{counts.in_error:,}")
cols[3].metric(
    "Stale",
    f"{counts.stale:,}",
    help=f"Active, and not checked in the last {counts.stale_after_hours:g} hours (counted from creation if never).",
)

st.subheader("Health")
st.caption("Every tenant, whatever the filters above; each count opens the Integrations list filtered by it.")
health.counts_with_links(load_health(ctx.integrations, actor))
health.incidents_link(ctx, actor)
health.engine_status(ctx)

# ----- counts by tier, provider, type and status (rolled up in core from a few hundred grouped rows) ------

NUMBER = st.column_config.NumberColumn(format="localized")


def breakdown(dimension: str, with_statuses: bool = True) -> None:
    st.subheader(f"By {dimension}")
    name = dimension.capitalize()
    rows = [
        {name: b.label, "Total": b.total, "Active": b.active, "Stale": b.stale}
        | ({STATUS_LABELS[s]: getattr(b, s) for s in STATUSES} if with_statuses else {})
        for b in counts.by(dimension)
    ]
    table = rows_table(rows)
    st.dataframe(
        table,
        hide_index=True,
        width="stretch",
        column_config={name: st.column_config.TextColumn(pinned=True)} | dict.fromkeys(table.column_names[1:], NUMBER),
    )


if counts.rows:
    left, right = st.columns(2)
    with left:
        breakdown("tier")
        breakdown("type")
    with right:
        breakdown("provider")
        breakdown("status", with_statuses=False)
elif filters.is_empty:
    st.info("No integrations yet. When people connect CRMs and helpdesks, their numbers appear here.")
else:
    st.info("No integration matches these filters. Clear a filter to see more.")

# ----- integrations in error -------------------------------------------------------------------------

st.subheader("Integrations in error, by cause")
if errors.rows:
    failing.grouped(errors.rows, errors.total)
    st.dataframe(
        rows_table(
            [
                {
                    "Name": r.name,
                    "Cause": cause_label(r.check_class),
                    "Last checked (UTC)": r.last_checked_at,
                    "Owner": r.owner,
                    "Tier": tier_label(r.tier),
                    "Provider": r.provider_name,
                    "Active": r.is_active,
                    "Message": r.message,
                }
                for r in errors.rows
            ]
        ),
        hide_index=True,
        width="stretch",
        column_config={
            "Name": st.column_config.TextColumn(width="medium", pinned=True),
            "Cause": st.column_config.TextColumn(width="medium"),
            "Last checked (UTC)": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm", width="medium"),
            "Owner": st.column_config.TextColumn(width="small"),
            "Tier": st.column_config.TextColumn(width="small"),
            "Provider": st.column_config.TextColumn(width="medium"),
            "Active": st.column_config.CheckboxColumn(width="small"),
            "Message": st.column_config.TextColumn(width="large", help="What the last check reported."),
        },
    )
    st.caption(
        f"Showing {errors.shown:,} of {count(errors.total, 'integration')} in error, most recently checked first."
        + (" Narrow the filters to see the others." if errors.shown < errors.total else "")
    )
else:
    st.success("No integration is in error" + ("." if filters.is_empty else " among those filtered."))

# ----- trend: a plain Vega-Lite spec (st.line_chart would build and validate it through Altair, which
# costs more than everything else on this page together) -----------------------------------------------------

st.subheader(f"Checks and errors per day, last {days} days")
st.vega_lite_chart(
    pd.DataFrame(
        {
            "Day": pd.to_datetime([p.day for p in trend.points]),
            "Checks": [p.checks for p in trend.points],
            "Errors": [p.errors for p in trend.points],
        }
    ),
    {
        "transform": [{"fold": list(COLORS), "as": ["Series", "Count"]}],
        "mark": {"type": "line", "point": True, "tooltip": True},
        "encoding": {
            "x": {"field": "Day", "type": "temporal", "timeUnit": "utcyearmonthdate", "title": None},
            "y": {"field": "Count", "type": "quantitative", "title": "Per day (UTC)"},
            "color": {
                "field": "Series",
                "type": "nominal",
                "title": None,
                "scale": {"domain": list(COLORS), "range": list(COLORS.values())},
                "legend": {"orient": "bottom"},
            },
        },
    },
    width="stretch",
)
st.caption(
    f"{count(trend.checks, 'check')}, {count(trend.errors, 'error')} in the period, today so far. From the audit log: "
    "connection tests and the health monitor's checks (a test refused by a rate limit did not run). "
    + (
        "Checks of integrations deleted since are included."
        if trend.includes_deleted
        else "Only checks of integrations that still exist can be counted under a tier or provider filter."
    )
    + (" The status filter does not apply here: a status is today's state, not history." if statuses else "")
)

# ----- downloads of what is shown: each file is written when its button is clicked (a callable), from
# the numbers this render showed, so a render never pays for a CSV nobody asked for -------------------------

cols = st.columns(3)
stamp = as_of.strftime("%Y%m%d-%H%M")
for col, (label, data, name) in zip(
    cols,
    (
        ("Counts (CSV)", lambda: statistics.counts_csv(counts), "counts"),
        ("Integrations in error (CSV)", lambda: statistics.errors_csv(errors), "errors"),
        ("Trend (CSV)", lambda: statistics.trend_csv(trend), "trend"),
    ),
    strict=True,
):
    col.download_button(
        label,
        data,
        file_name=f"statistics-{name}-{stamp}.csv",
        mime="text/csv",
        on_click="ignore",
        icon=":material/download:",
    )
