"""Composition root shared by Home.py and manage.py: settings, database, cipher, catalog, services."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from functools import partial

from sqlalchemy import Engine
from sqlalchemy.orm import sessionmaker

from core import db
from core.chatwoot.helpdesk import HelpdeskService
from core.chatwoot.presets import PresetService
from core.chatwoot.widget_service import WidgetService
from core.crypto import FieldCipher
from core.http import HttpPolicy, make_session
from core.integrations.check_all import CheckAll
from core.integrations.history import HistoryService
from core.integrations.service import IntegrationService
from core.integrations.statistics import StatisticsService
from core.keys import verify_key
from core.ratelimit import RateLimiter
from core.sessions import SessionService
from core.settings import Settings, load_settings
from core.users import UserService
from providers import CATALOG


@dataclass
class AppContext:
    settings: Settings
    engine: Engine
    factory: sessionmaker
    cipher: FieldCipher
    users: UserService
    sessions: SessionService
    limiter: RateLimiter
    integrations: IntegrationService
    check_all: CheckAll
    helpdesk: HelpdeskService
    presets: PresetService
    widget: WidgetService
    statistics: StatisticsService


def prepare(settings: Settings | None = None) -> tuple[AppContext, str | None]:
    """Migrate, check the key, wire the services, and create the first administrator on an empty database.

    Returns the services and, only when the administrator was created just now, its one-time password.
    """
    context = build(settings, migrate=True)
    return context, context.users.ensure_first_admin()


def build(settings: Settings | None = None, migrate: bool = True) -> AppContext:
    """Open the database (migrating it), check the key against it, and wire the services."""
    settings = settings or load_settings()
    if migrate:
        db.upgrade(settings.database_url)
    engine = db.make_engine(settings.database_url)
    factory = db.make_session_factory(engine)
    cipher = FieldCipher(list(settings.encryption_keys))  # newest first
    verify_key(factory, cipher)
    policy = HttpPolicy(
        settings.http_connect_timeout,
        settings.http_read_timeout,
        settings.http_max_retries,
        outbound_allow=settings.outbound_allow,
    )
    http_session = partial(make_session, policy)
    limiter = RateLimiter(factory)
    integrations = IntegrationService(
        factory,
        cipher,
        CATALOG,
        http_session,
        limiter,
        stale_after=timedelta(hours=settings.stale_after_hours),
        history=HistoryService(factory, settings.check_history_retention_days),
    )
    helpdesk = HelpdeskService(integrations, http_session, factory, limiter)
    return AppContext(
        settings=settings,
        engine=engine,
        factory=factory,
        cipher=cipher,
        users=UserService(factory),
        limiter=limiter,
        sessions=SessionService(factory, settings.cookie_key),
        integrations=integrations,
        check_all=CheckAll(integrations, factory, limiter, settings.check_concurrency, settings.check_per_host),
        helpdesk=helpdesk,
        presets=PresetService(factory),
        widget=WidgetService(helpdesk, settings.chatwoot_widget_base_url),
        statistics=StatisticsService(factory, CATALOG, settings.stale_after_hours),
    )
