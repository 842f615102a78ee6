"""Integrations: the person's integrations (everyone's, for administrators), one "Add integration" menu with
each type's tier gate and the tier limit, Check all, and what to do with the selected rows.

The filters live in the address, so another page can link to a filtered list (and a filtered list can be
shared by its address). Query parameters, each optional:

- ``status``: ``connected``, ``error``, ``never_tested`` (``unknown`` is read the same) or ``stale``
- ``provider``: a catalog key, e.g. ``CHATWOOT``, ``HUBSPOT``, ``CUSTOM``
- ``health``: one of core.integrations.health.Health, e.g. ``failing``, ``needs_reconnect``
- ``q``: a name search (administrators: or owner; anyone: ``#id``)

e.g. ``/integrations?status=error&provider=HUBSPOT``. The one provider filter is also Check all's scope.
"""

from __future__ import annotations

from dataclasses import replace

import streamlit as st

from core.catalog import INTEGRATION_TYPES
from core.integrations import exports
from core.integrations.health import Health
from core.integrations.service import ListQuery
from core.tiers import FEATURE_MIN_TIER, UNLIMITED, Tier, first_tier_above
from providers import CATALOG
from ui import check_all, connect, integration_list, state
from ui.integration_dialogs import open_dialog, show_dialogs

ctx, actor = state.context(), state.actor()
service = ctx.integrations
tier = Tier.parse(actor.tier)
ADD_MENU = "add_menu_nonce"  # how often a type was chosen: part of the Add menu's key
ADD_LABELS = {"CRM": "Add CRM integration", "DATABASE": "Add database", "API": "Add API", "WEBHOOK": "Add webhook"}
# Types that open a page of their own: type key -> (page, link label, icon).
TYPE_PAGES = {
    "HELPDESK": ("app_pages/helpdesk.py", "Open Helpdesk", ":material/support_agent:"),
    "CHAT_WIDGET": ("app_pages/widget.py", "Open Chat widget", ":material/chat:"),
}


# ----- adding ------------------------------------------------------------------------------------


def add_choice(kind, full: bool) -> None:
    """One line of the Add menu: the type's button (or page link), or why it is closed."""
    minimum = FEATURE_MIN_TIER[kind.key]
    if tier < minimum:
        st.button(ADD_LABELS.get(kind.key, f"Add {kind.name}"), key=f"add-{kind.key}", disabled=True, width="stretch")
        st.caption(f"🔒 Needs the **{minimum.label}** tier (yours: {tier.label}).")
    elif not kind.available:
        st.button(ADD_LABELS.get(kind.key, f"Add {kind.name}"), key=f"add-{kind.key}", disabled=True, width="stretch")
        st.caption(kind.note)
    elif kind.key in TYPE_PAGES:
        page, label, icon = TYPE_PAGES[kind.key]
        st.page_link(page, label=label, icon=icon, help=kind.description)
    else:
        st.button(
            ADD_LABELS.get(kind.key, f"Add {kind.name}"),
            key=f"add-{kind.key}",
            help=kind.description,
            width="stretch",
            disabled=full,
            on_click=open_add_dialog,
            args=(kind.key,),
        )


def open_add_dialog(category: str) -> None:
    """Open the add dialog, and the Add menu anew (closed): left open, it sat over the dialog. A new key
    closes it however soon the choice follows the opening, where setting its state could be undone."""
    st.session_state[ADD_MENU] = st.session_state.get(ADD_MENU, 0) + 1
    open_dialog("add", category=category)


def usage_line(used: int, allowed: int) -> tuple[str, bool]:
    """What the tier allows, in words, and whether it is full."""
    if allowed == UNLIMITED:
        return f"{tier.label} tier: no limit on integrations ({used:,} used).", False
    full = used >= allowed
    text = f"{tier.label} tier: {used} of {allowed} integrations used."
    if full:
        upgrade = first_tier_above("integrations", used)
        text += f" The {upgrade.label} tier allows more." if upgrade else ""
    return text, full


def add_menu() -> None:
    used, allowed = service.usage(actor)
    text, full = usage_line(used, allowed)
    title, menu = st.columns([3, 1], vertical_alignment="bottom")
    title.title("Integrations")
    with menu.popover(
        "Add integration",
        key=f"add_menu_{st.session_state.get(ADD_MENU, 0)}",
        icon=":material/add:",
        type="primary",
        width="stretch",
        disabled=full,
        help=text if full else "Connect a CRM, a database, an API or a webhook, or open the Helpdesk or the widget.",
    ):
        for kind in INTEGRATION_TYPES:
            add_choice(kind, full)
    (st.warning if full else st.caption)(text)


# ----- filters (the address and the boxes agree) -------------------------------------------------


LIST_STATUSES = {
    "All statuses": None,
    "Connected": "connected",
    "Error": "error",
    "Never tested": "never_tested",
    "Stale": "stale",
}
QUERY_STATUS = {"never_tested": "unknown"}  # the address's word -> the list's status
PAGE_SIZE = 50
HEALTH_FILTERS = {"Any health": None, **{h.label: h.value for h in Health}}
PROVIDERS = {"All providers": None, **{p.name: p.key for p in CATALOG}}


def synced_choice(column, label: str, options: dict[str, str | None], key: str, param: str) -> str | None:
    """A filter box that a link can set (?param=value): a new value in the address chooses its option;
    choosing another option writes it to the address."""
    wanted = st.query_params.get(param)
    if param == "status" and wanted == "unknown":
        wanted = "never_tested"
    if wanted != st.session_state.get(f"{key}_param"):  # arrived by a link, or the address was edited
        st.session_state[key] = next((k for k, v in options.items() if v == wanted), next(iter(options)))
    chosen = options[column.selectbox(label, list(options), key=key, label_visibility="collapsed")]
    if chosen != st.query_params.get(param):
        if chosen:
            st.query_params[param] = chosen
        else:
            st.query_params.pop(param, None)
    st.session_state[f"{key}_param"] = chosen
    return chosen


def synced_search(column) -> str:
    wanted = st.query_params.get("q", "")[:100]
    if wanted != st.session_state.get("list_search_param", ""):
        st.session_state["list_search"] = wanted
    search = column.text_input(
        "Search",
        key="list_search",
        placeholder="Name, owner or #id" if actor.is_admin else "Name or #id",
        label_visibility="collapsed",
        icon=":material/search:",
    ).strip()[:100]
    if search != st.query_params.get("q", ""):
        if search:
            st.query_params["q"] = search
        else:
            st.query_params.pop("q", None)
    st.session_state["list_search_param"] = search
    return search


def list_query() -> ListQuery:
    """Search, filters and page: the list is cut (and naturally sorted) in the database, any size stays quick."""
    search_col, filters = st.columns(2)
    search = synced_search(search_col)
    boxes = filters.container(horizontal=True)  # one row of three, at a phone's width too
    status = synced_choice(boxes, "Status", LIST_STATUSES, "list_status", "status")
    provider = synced_choice(boxes, "Provider", PROVIDERS, "list_provider", "provider")
    health = synced_choice(boxes, "Health", HEALTH_FILTERS, "list_health", "health")
    status = QUERY_STATUS.get(status or "", status)
    query = ListQuery(search, status, provider, health=health, limit=PAGE_SIZE)
    previous = st.session_state.get("list_filters")
    if previous != query:  # new filters start at the first page
        st.session_state["list_filters"] = query
        st.session_state["list_offset"] = 0
        if previous is not None:  # (the first list after adding the first integration keeps its test)
            integration_list.forget_report()  # it described other rows
    return replace(query, offset=st.session_state.get("list_offset", 0))


def go_to(offset: int) -> None:
    st.session_state["list_offset"] = max(0, offset)


def pager(page) -> None:
    """Previous and Next set the offset in a callback, before the run the click starts: one run draws the
    new page (setting it in the run, then st.rerun, would draw the list twice)."""
    first, last = page.offset + 1, page.offset + len(page.views)
    left, middle, right = st.columns([1, 4, 1])
    middle.caption(f"Showing {first}–{last} of {page.total}")
    left.button(
        "Previous",
        key="list_prev",
        disabled=page.offset == 0,
        icon=":material/chevron_left:",
        on_click=go_to,
        args=(page.offset - page.limit,),
    )
    right.button(
        "Next",
        key="list_next",
        disabled=last >= page.total,
        icon=":material/chevron_right:",
        on_click=go_to,
        args=(page.offset + page.limit,),
    )


def export_buttons(query: ListQuery) -> None:
    """Downloads of every integration matching the search (not just this page), built only when clicked;
    secrets are masked in both formats."""
    left, right, _ = st.columns([1, 1, 4])
    left.download_button(
        "Export CSV",
        state.deferred(lambda fresh: exports.export_csv(service.matching(fresh, query)), actor),
        "integrations.csv",
        "text/csv",
        icon=":material/download:",
    )
    right.download_button(
        "Export JSON",
        state.deferred(lambda fresh: exports.export_json(service.matching(fresh, query)), actor),
        "integrations.json",
        "application/json",
        icon=":material/download:",
    )


def integrations_section() -> None:
    stats = service.stats(actor)
    if not stats.total:
        st.info("No integrations yet. Use **Add integration** above to connect a Chatwoot account or any REST CRM.")
        return
    query = list_query()
    check_all.section(ctx, actor, query.provider, stats.stale)
    page = service.page(actor, query)
    integration_list.show_report()
    if not page.views:
        st.info("No integration matches this search. Clear the search or choose other filters.")
        return
    chosen = integration_list.table(page.views, actor.is_admin)
    integration_list.selection_actions(service, actor, chosen)
    pager(page)
    export_buttons(query)


add_menu()
connect.show_outcome(ctx, actor)
integrations_section()

show_dialogs()
