"""Composition root shared by Home.py and manage.py: settings, database, cipher, catalog, services."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from functools import partial

from sqlalchemy import Engine
from sqlalchemy.orm import sessionmaker

from core import db
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
from core.crypto import FieldCipher
from core.engine.queue import make_huey
from core.engine.runs import CheckRuns
from core.engine.tasks import EngineLimits, TaskEngine
from core.http import HttpPolicy, make_session
from core.integrations.health import HealthPolicy
from core.integrations.history import HistoryService
from core.integrations.refresh import TokenRefresher
from core.integrations.service import IntegrationService
from core.integrations.statistics import StatisticsService
from core.keys import verify_key
from core.ratelimit import RateLimiter
from core.sessions import SessionService
from core.settings import Settings, load_settings
from core.sync.contacts import set_phone_region
from core.sync.service import SyncService
from core.templates.service import TemplateService
from core.templates.steps import Services
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
    tasks: TaskEngine
    helpdesk: HelpdeskService
    presets: PresetService
    widget: WidgetService
    statistics: StatisticsService
    alerts: AlertPipeline
    subscriptions: SubscriptionService
    oauth_apps: OAuthApps
    connect: ConnectFlows
    links: ConnectLinks
    bots: BotService
    bot_receiver: BotReceiver
    inboxes: InboxService
    syncs: SyncService
    templates: TemplateService


def prepare(settings: Settings | None = None) -> tuple[AppContext, str | None]:
    """Migrate, check the key, wire the services, and create the first administrator on an empty database.

    Returns the services and, only when the administrator was created just now, its one-time password.
    """
    context = build(settings, migrate=True)
    return context, context.users.ensure_first_admin()


def build(settings: Settings | None = None, migrate: bool = True) -> AppContext:
    """Open the database (migrating it), check the key against it, and wire the services."""
    settings = settings or load_settings()
    set_phone_region(settings.sync_phone_region)  # how the contact sync reads national phone numbers
    if migrate:
        db.upgrade(settings.database_url)
    # The consumer's check threads, the tick's and a page's or the CLI's own.
    engine = db.make_engine(settings.database_url, connections=settings.check_concurrency + 4)
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
    history = HistoryService(factory, settings.check_history_retention_days)
    integrations = IntegrationService(
        factory,
        cipher,
        CATALOG,
        http_session,
        limiter,
        stale_after=timedelta(hours=settings.stale_after_hours),
        history=history,
        health_policy=health_policy(settings),
        interval_override=settings.check_interval_override,
    )
    alerts = AlertPipeline(factory, cipher, settings, http_session, catalog=CATALOG)
    tasks = TaskEngine(
        make_huey(settings.redis_url, settings.engine_queue_path, settings.engine_queue_name),
        integrations,
        CheckRuns(factory, integrations, limiter),
        factory,
        EngineLimits(settings.check_concurrency, settings.check_per_host, settings.engine_tick_seconds),
        settings.check_interval_override,
        refresher=TokenRefresher(integrations),
        alerts=alerts,
    )
    syncs = SyncService(factory, integrations)
    tasks.syncs = syncs
    syncs.enqueue = tasks.sync_run
    tasks.daily_jobs.append(lambda now: history.prune(now))  # retention, once a day on the scheduler
    helpdesk = HelpdeskService(integrations, http_session, factory, limiter)
    bots = BotService(factory, cipher, integrations, helpdesk, http_session, settings.public_base_url)
    bot_receiver = BotReceiver(factory, cipher, http_session)
    bot_receiver.bind(tasks.huey)  # the greeting bot's replies run as engine tasks
    tasks.daily_jobs.append(lambda now: bot_receiver.prune(now))
    oauth_apps = OAuthApps(factory, cipher, CATALOG)
    connect = ConnectFlows(
        factory, cipher, CATALOG, oauth_apps, integrations, http_session, limiter, settings.public_base_url
    )
    connect.on_link_completed = alerts.link_completed  # the owner's alert; the engine's sweep sends it
    presets = PresetService(factory)
    widget = WidgetService(helpdesk, settings.chatwoot_widget_base_url)
    inboxes = InboxService(helpdesk, bots, factory)
    templates = TemplateService(
        factory, cipher, Services(helpdesk, inboxes, bots, presets, widget, alerts.subscriptions, syncs)
    )
    templates.bind(tasks.add_job)  # a template's run is the engine's "template_run" task
    links = ConnectLinks(factory, cipher, CATALOG, oauth_apps, integrations, connect, limiter, settings.company_name)
    return AppContext(
        settings=settings,
        engine=engine,
        factory=factory,
        cipher=cipher,
        users=UserService(factory),
        limiter=limiter,
        sessions=SessionService(factory, settings.cookie_key),
        integrations=integrations,
        tasks=tasks,
        helpdesk=helpdesk,
        presets=presets,
        widget=widget,
        statistics=StatisticsService(factory, CATALOG, settings.stale_after_hours),
        alerts=alerts,
        subscriptions=alerts.subscriptions,
        oauth_apps=oauth_apps,
        connect=connect,
        links=links,
        bots=bots,
        bot_receiver=bot_receiver,
        inboxes=inboxes,
        syncs=syncs,
        templates=templates,
    )


def health_policy(settings: Settings) -> HealthPolicy:
    return HealthPolicy(
        failing_after_checks=settings.health_failing_after_checks,
        failing_after=timedelta(seconds=settings.health_failing_after_seconds),
        pause_after=timedelta(seconds=settings.health_pause_after_seconds),
        pause_after_checks=settings.health_pause_after_checks,
        recover_after_checks=settings.health_recover_after_checks,
    )
