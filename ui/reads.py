"""Cached reads of one integration's page, per person, for a short while; every write in this process
clears them (forget), so what a person just did shows at once."""

from __future__ import annotations

import streamlit as st

from core.audit import Actor
from core.integrations.detail import IntegrationDetail
from core.integrations.service import IntegrationService

DETAIL_TTL_SECONDS = 30


@st.cache_data(ttl=DETAIL_TTL_SECONDS, show_spinner=False, max_entries=1000)
def _detail(_service: IntegrationService, actor: Actor, integration_id: int) -> IntegrationDetail:
    return _service.detail(actor, integration_id)


def detail(service: IntegrationService, actor: Actor, integration_id: int) -> IntegrationDetail:
    """IntegrationService.detail, kept DETAIL_TTL_SECONDS for this actor (a NotFoundError is never kept)."""
    return _detail(service, actor, integration_id)


def forget() -> None:
    _detail.clear()
