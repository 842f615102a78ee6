"""Composition root shared by Home.py, the server's routes, manage.py and the task engine: settings,
database, cipher, catalog, and the services, each built on first use.

Built on first use so a page imports and builds only what it calls: the first page (sign-in, the
Integrations list) shows without loading the task queue, the alert channels, the Chatwoot bots or the
templates. The engine's jobs are built together (`tasks`, `syncs`, `templates`, `bot_receiver`): every job
must be registered on the queue before a consumer takes work or a page enqueues one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import cached_property, partial
from typing import TYPE_CHECKING

from sqlalchemy import Engine
from sqlalchemy.orm import sessionmaker

from core import db
from core.crypto import FieldCipher
from core.integrations.health import HealthPolicy
from core.keys import verify_key
from core.settings import Settings, load_settings
from core.sync.contacts import set_phone_region
from providers import CATALOG

if TYPE_CHECKING:
    import requests

    from core.alerts.pipeline import AlertPipeline
    from core.alerts.subscriptions import SubscriptionService
    from core.chatwoot.bot_events import BotReceiver
    from core.chatwoot.bots import BotService
    from core.chatwoot.helpdesk import HelpdeskService
    from core.chatwoot.inboxes import InboxService
    from core.chatwoot.presets import PresetService
    from core.chatwoot.widget_service import WidgetService
    from core.connect.apps import OAuthApps
    from core.connect.flows import ConnectFlows
    from core.connect.links import ConnectLinks
    from core.engine.runs import CheckRuns
    from core.engine.scheduler import SchedulerLease
    from core.engine.tasks import TaskEngine
    from core.integrations.history import HistoryService
    from core.integrations.service import IntegrationService
    from core.integrations.statistics import StatisticsService
    from core.ratelimit import RateLimiter
    from core.sessions import SessionService
    from core.sync.service import SyncService
    from core.templates.service import TemplateService
    from core.users import UserService


@dataclass(frozen=True)
class EngineJobs:
    """The task engine and the services whose jobs run on it, wired to each other."""

    tasks: TaskEngine
    syncs: SyncService
    templates: TemplateService
    bot_receiver: BotReceiver


class AppContext:
    """The services of one process and configuration. Each is built once, when first asked for
    (cached_property, which on Python 3.11 builds it once when two threads ask at the same time)."""

    def __init__(self, settings: Settings, engine: Engine, factory: sessionmaker, cipher: FieldCipher) -> None:
        self.settings = settings
        self.engine = engine
        self.factory = factory
        self.cipher = cipher

    # ----- what every page needs ------------------------------------------------------------------

    @cached_property
    def http_session(self) -> Callable[[], requests.Session]:
        from core.http import HttpPolicy, make_session

        settings = self.settings
        policy = HttpPolicy(
            settings.http_connect_timeout,
            settings.http_read_timeout,
            settings.http_max_retries,
            outbound_allow=settings.outbound_allow,
        )
        return partial(make_session, policy)

    @cached_property
    def limiter(self) -> RateLimiter:
        from core.ratelimit import RateLimiter

        return RateLimiter(self.factory)

    @cached_property
    def users(self) -> UserService:
        from core.users import UserService

        return UserService(self.factory)

    @cached_property
    def sessions(self) -> SessionService:
        from core.sessions import SessionService

        return SessionService(self.factory, self.settings.cookie_key)

    @cached_property
    def history(self) -> HistoryService:
        from core.integrations.history import HistoryService

        return HistoryService(self.factory, self.settings.check_history_retention_days)

    @cached_property
    def integrations(self) -> IntegrationService:
        from core.integrations.service import IntegrationService

        settings = self.settings
        return IntegrationService(
            self.factory,
            self.cipher,
            CATALOG,
            self.http_session,
            self.limiter,
            stale_after=timedelta(hours=settings.stale_after_hours),
            history=self.history,
            health_policy=health_policy(settings),
            interval_override=settings.check_interval_override,
        )

    @cached_property
    def runs(self) -> CheckRuns:
        """Check-all runs: started and cancelled through `tasks`, read here (no queue needed to read)."""
        from core.engine.runs import CheckRuns

        return CheckRuns(self.factory, self.integrations, self.limiter)

    @cached_property
    def scheduler(self) -> SchedulerLease:
        """The scheduler's lease, whose heartbeat says whether a worker runs."""
        from core.engine.scheduler import SchedulerLease

        return SchedulerLease(self.factory)

    @cached_property
    def statistics(self) -> StatisticsService:
        from core.integrations.statistics import StatisticsService

        return StatisticsService(self.factory, CATALOG, self.settings.stale_after_hours)

    # ----- alerts, connecting, Chatwoot -------------------------------------------------------------

    @cached_property
    def alerts(self) -> AlertPipeline:
        from core.alerts.pipeline import AlertPipeline

        return AlertPipeline(self.factory, self.cipher, self.settings, self.http_session, catalog=CATALOG)

    @property
    def subscriptions(self) -> SubscriptionService:
        return self.alerts.subscriptions

    @cached_property
    def oauth_apps(self) -> OAuthApps:
        from core.connect.apps import OAuthApps

        return OAuthApps(self.factory, self.cipher, CATALOG)

    @cached_property
    def connect(self) -> ConnectFlows:
        from core.connect.flows import ConnectFlows

        connect = ConnectFlows(
            self.factory,
            self.cipher,
            CATALOG,
            self.oauth_apps,
            self.integrations,
            self.http_session,
            self.limiter,
            self.settings.public_base_url,
        )
        # The owner's alert (the engine's sweep sends it); the alert machinery loads when a link completes.
        connect.on_link_completed = lambda link_id: self.alerts.link_completed(link_id)
        return connect

    @cached_property
    def links(self) -> ConnectLinks:
        from core.connect.links import ConnectLinks

        return ConnectLinks(
            self.factory,
            self.cipher,
            CATALOG,
            self.oauth_apps,
            self.integrations,
            self.connect,
            self.limiter,
            self.settings.company_name,
        )

    @cached_property
    def helpdesk(self) -> HelpdeskService:
        from core.chatwoot.helpdesk import HelpdeskService

        return HelpdeskService(self.integrations, self.http_session, self.factory, self.limiter)

    @cached_property
    def bots(self) -> BotService:
        from core.chatwoot.bots import BotService

        base_url = self.settings.public_base_url
        return BotService(self.factory, self.cipher, self.integrations, self.helpdesk, self.http_session, base_url)

    @cached_property
    def presets(self) -> PresetService:
        from core.chatwoot.presets import PresetService

        return PresetService(self.factory)

    @cached_property
    def widget(self) -> WidgetService:
        from core.chatwoot.widget_service import WidgetService

        return WidgetService(self.helpdesk, self.settings.chatwoot_widget_base_url)

    @cached_property
    def inboxes(self) -> InboxService:
        from core.chatwoot.inboxes import InboxService

        return InboxService(self.helpdesk, self.bots, self.factory)

    # ----- the task engine and its jobs -------------------------------------------------------------

    @cached_property
    def jobs(self) -> EngineJobs:
        from core.chatwoot.bot_events import BotReceiver
        from core.engine.queue import make_huey
        from core.engine.tasks import EngineLimits, TaskEngine
        from core.integrations.refresh import TokenRefresher
        from core.sync.service import SyncService
        from core.templates.service import TemplateService
        from core.templates.steps import Services

        settings, factory = self.settings, self.factory
        tasks = TaskEngine(
            make_huey(settings.redis_url, settings.engine_queue_path, settings.engine_queue_name),
            self.integrations,
            self.runs,
            factory,
            EngineLimits(settings.check_concurrency, settings.check_per_host, settings.engine_tick_seconds),
            settings.check_interval_override,
            refresher=TokenRefresher(self.integrations),
            alerts=self.alerts,
        )
        syncs = SyncService(factory, self.integrations)
        tasks.syncs = syncs
        syncs.enqueue = tasks.sync_run
        history = self.history
        tasks.daily_jobs.append(lambda now: history.prune(now))  # retention, once a day on the scheduler
        bot_receiver = BotReceiver(factory, self.cipher, self.http_session)
        bot_receiver.bind(tasks.huey)  # the greeting bot's replies run as engine tasks
        tasks.daily_jobs.append(lambda now: bot_receiver.prune(now))
        engine = self.engine
        tasks.daily_jobs.append(lambda _now: db.refresh_planner_statistics(engine))
        services = Services(
            self.helpdesk, self.inboxes, self.bots, self.presets, self.widget, self.alerts.subscriptions, syncs
        )
        templates = TemplateService(factory, self.cipher, services)
        templates.bind(tasks.add_job)  # a template's run is the engine's "template_run" task
        return EngineJobs(tasks, syncs, templates, bot_receiver)

    @property
    def tasks(self) -> TaskEngine:
        return self.jobs.tasks

    @property
    def syncs(self) -> SyncService:
        return self.jobs.syncs

    @property
    def templates(self) -> TemplateService:
        return self.jobs.templates

    @property
    def bot_receiver(self) -> BotReceiver:
        return self.jobs.bot_receiver


def prepare(settings: Settings | None = None) -> tuple[AppContext, str | None]:
    """Migrate, check the key, wire the services, and create the first administrator on an empty database.

    Returns the services and, only when the administrator was created just now, its one-time password.
    """
    context = build(settings, migrate=True)
    return context, context.users.ensure_first_admin()


def build(settings: Settings | None = None, migrate: bool = True) -> AppContext:
    """Open the database (migrating it) and check the key against it; the services follow on first use."""
    settings = settings or load_settings()
    set_phone_region(settings.sync_phone_region)  # how the contact sync reads national phone numbers
    if migrate:
        db.upgrade(settings.database_url)
    # The consumer's check threads, the tick's and a page's or the CLI's own.
    engine = db.make_engine(settings.database_url, connections=settings.check_concurrency + 4)
    factory = db.make_session_factory(engine)
    cipher = FieldCipher(list(settings.encryption_keys))  # newest first
    verify_key(factory, cipher)
    return AppContext(settings, engine, factory, cipher)


def health_policy(settings: Settings) -> HealthPolicy:
    return HealthPolicy(
        failing_after_checks=settings.health_failing_after_checks,
        failing_after=timedelta(seconds=settings.health_failing_after_seconds),
        pause_after=timedelta(seconds=settings.health_pause_after_seconds),
        pause_after_checks=settings.health_pause_after_checks,
        recover_after_checks=settings.health_recover_after_checks,
    )
