"""Every setting, read once from the environment (and .streamlit/secrets.toml), validated at start."""

from __future__ import annotations

import os
import re
import secrets
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from core.chatwoot.widget import base_url_problem
from core.crypto import key_bytes, key_id
from core.errors import ConsoleError
from core.http import parse_allow_list

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = f"sqlite:///{PROJECT_ROOT / 'data' / 'console.db'}"
DEFAULT_SECRETS_DIR = PROJECT_ROOT / ".secrets"


class SettingsError(ConsoleError):
    """A setting is missing or malformed; the message says how to fix it."""


SMTP_SECURITY = ("none", "starttls", "tls")
SMTP_DEFAULT_PORTS = {"none": 25, "starttls": 587, "tls": 465}


@dataclass(frozen=True)
class SmtpSettings:
    """SMTP_*: where e-mail alerts are sent from. host None: e-mail alerts cannot be sent (and say so)."""

    host: str | None = None
    port: int = 587
    username: str | None = None
    password: str | None = field(default=None, repr=False)  # never printed, logged or stored
    security: str = "starttls"  # none | starttls | tls (implicit TLS, usually port 465)
    from_address: str = "integrations-console@localhost"
    timeout: float = 30  # seconds for the whole conversation, connect to QUIT


@dataclass(frozen=True)
class Settings:
    database_url: str
    encryption_key: str  # the newest key: encryption_keys[0]
    encryption_key_source: str  # "environment", "secrets.toml" or the generated file's path
    cookie_key: str
    cookie_name: str
    cookie_expiry_days: float
    http_connect_timeout: float
    http_read_timeout: float
    http_max_retries: int
    production: bool
    # The public address the chat widget loads Chatwoot from, when it differs from the integration's
    # Chatwoot URL (which may be an internal address). None: the integration's URL.
    chatwoot_widget_base_url: str | None = None
    # OUTBOUND_ALLOW: host names and networks outbound calls may reach although they are not public
    # (a staff Chatwoot on the internal network). Empty: only public internet addresses.
    outbound_allow: tuple[str, ...] = ()
    # The key ring, newest first: the newest encrypts, every one decrypts. Empty: just encryption_key.
    # When given, encryption_key becomes its first key (as INTEGRATION_ENCRYPTION_KEYS wins over _KEY).
    encryption_keys: tuple[str, ...] = field(default=())
    # Health checks: at most this many at once in one run, and at most per_host against one customer host.
    check_concurrency: int = 16
    check_per_host: int = 2
    # An active integration whose last check is older than this is shown as stale.
    stale_after_hours: float = 24
    # Raw check history is kept this many days; older days are kept as one daily rollup per integration.
    check_history_retention_days: int = 90
    # The task engine (core.engine): Redis when REDIS_URL is set, else a SQLite queue file (ENGINE_QUEUE_PATH,
    # by default beside the SQLite database). ENGINE_EMBEDDED_WORKERS consumer threads run inside each app
    # process (default: 4 without Redis, 0 with it: run `manage.py worker` processes instead).
    redis_url: str | None = None
    engine_queue_name: str = "integrations-console"  # every process of one installation uses the same
    engine_queue_path: str = ""
    engine_embedded_workers: int = 4
    engine_tick_seconds: int = 60  # how often the scheduler plans the checks that come due
    # CHECK_INTERVAL_SECONDS: one check interval for every tier instead of core.tiers' table (demos, tests).
    check_interval_override: float | None = None
    # Health thresholds (core.integrations.health.HealthPolicy).
    health_failing_after_checks: int = 3
    health_failing_after_seconds: float = 3600
    health_pause_after_seconds: float = 7 * 24 * 3600
    health_pause_after_checks: int = 30
    health_recover_after_checks: int = 1
    # Alerts (core.alerts): the SMTP server e-mail alerts go through, how they are grouped and retried.
    smtp: SmtpSettings = field(default_factory=lambda: SmtpSettings())
    alert_group_window_seconds: float = 120
    alert_incident_threshold: int = 5
    alert_max_attempts: int = 6
    # The console's public address (https://console.example.com), for absolute links in alerts; None: no links.
    public_base_url: str | None = None
    # COMPANY_NAME: who asks for access on a customer's connect-link page ("Acme Support asks to connect ...").
    company_name: str = "Integrations Console"
    # SYNC_PHONE_REGION: the country (ISO 3166 code, "DE", "US") a contact's national phone number (no + or
    # international prefix) is read in by the contact sync; "" reads only international numbers.
    sync_phone_region: str = ""

    def __post_init__(self):
        keys = tuple(self.encryption_keys) or (self.encryption_key,)
        object.__setattr__(self, "encryption_keys", keys)
        object.__setattr__(self, "encryption_key", keys[0])


def _secrets_toml(path: Path) -> dict:
    if not path.is_file():
        return {}
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{path} is not valid TOML ({exc}). Fix or remove the file.") from exc


def _lookup(name: str, env: dict, toml: dict) -> tuple[str | None, str]:
    if env.get(name):
        return env[name], "environment"
    if toml.get(name):
        return str(toml[name]), "secrets.toml"
    return None, ""


def _key_ring(text: str) -> tuple[str, ...]:
    """INTEGRATION_ENCRYPTION_KEYS: comma-separated, newest first, no empty entry, no key twice."""
    keys = tuple(part.strip() for part in text.split(","))
    if not keys or any(not k for k in keys):
        raise SettingsError(
            "INTEGRATION_ENCRYPTION_KEYS has an empty entry. List the keys separated by commas, newest first, "
            "e.g. INTEGRATION_ENCRYPTION_KEYS=<new key>,<old key>."
        )
    ids = [key_id(key_bytes(k)) for k in keys]
    if len(set(ids)) != len(ids):
        raise SettingsError("INTEGRATION_ENCRYPTION_KEYS lists the same key twice. Keep one of each.")
    return keys


def _generated_secret(path: Path, what: str, announce: bool) -> str:
    """Read a secret from a git-ignored file, creating it (with a warning) on first use."""
    if path.is_file():
        value = path.read_text(encoding="utf-8").strip()
        if not value:  # an empty key would silently become SHA-256 of the empty string
            raise SettingsError(
                f"{path} is empty. Restore the {what} from your backup, or delete the file to generate a new one."
            )
        return value
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_hex(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(value + "\n")
    if announce:
        print(
            f"WARNING: no {what} was set, so one was generated into {path}. "
            "Back this file up: without it the stored secrets cannot be read.",
            file=sys.stderr,
        )
    return value


def _outbound_allow(env: dict, toml: dict) -> tuple[str, ...]:
    raw = env.get("OUTBOUND_ALLOW") or toml.get("OUTBOUND_ALLOW") or ""
    entries = [str(entry) for entry in raw] if isinstance(raw, list) else str(raw).split(",")
    try:
        return parse_allow_list(entries)
    except ValueError as exc:
        raise SettingsError(
            f"OUTBOUND_ALLOW is not usable: {exc}. List host names and networks separated by commas, "
            "e.g. OUTBOUND_ALLOW=chatwoot.internal,10.20.0.0/16."
        ) from exc


def _number(name: str, raw: str | None, default: float, low: float, high: float) -> float:
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise SettingsError(f"{name} must be a number, got {raw!r}.") from exc
    if not low <= value <= high:
        raise SettingsError(f"{name} must be between {low:g} and {high:g}, got {value:g}.")
    return value


_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")


def _smtp(env: dict, toml: dict) -> SmtpSettings:
    def value(name: str) -> str | None:
        found, _ = _lookup(name, env, toml)
        return found.strip() if found is not None and found.strip() else None

    security = (value("SMTP_SECURITY") or "starttls").lower()
    if security not in SMTP_SECURITY:
        raise SettingsError(f"SMTP_SECURITY must be one of none, starttls or tls, got {security!r}.")
    sender = value("SMTP_FROM") or "integrations-console@localhost"
    if not _EMAIL.match(sender) or any(c in sender for c in "\r\n"):
        raise SettingsError(f"SMTP_FROM must be an e-mail address such as alerts@example.com, got {sender!r}.")
    username, password = value("SMTP_USERNAME"), value("SMTP_PASSWORD")
    if password and not username:
        raise SettingsError("SMTP_PASSWORD is set without SMTP_USERNAME. Set both, or neither.")
    port = value("SMTP_PORT")
    return SmtpSettings(
        host=value("SMTP_HOST"),
        port=int(_number("SMTP_PORT", port, SMTP_DEFAULT_PORTS[security], 1, 65535)),
        username=username,
        password=password,
        security=security,
        from_address=sender,
        timeout=_number("SMTP_TIMEOUT", value("SMTP_TIMEOUT"), 30, 1, 300),
    )


def _public_base_url(env: dict, toml: dict) -> str | None:
    raw, _ = _lookup("PUBLIC_BASE_URL", env, toml)
    if raw is None or not raw.strip():
        return None
    url = raw.strip().rstrip("/")
    if not re.fullmatch(r"https?://[^\s/?#]+(/[^\s?#]*)?", url):
        raise SettingsError(
            f"PUBLIC_BASE_URL must be the console's address such as https://console.example.com, got {raw!r}."
        )
    return url


def _company_name(env: dict) -> str:
    name = " ".join((env.get("COMPANY_NAME") or "").split())
    if len(name) > 100:
        raise SettingsError("COMPANY_NAME is the name customers see on a connect link: at most 100 characters.")
    return name or "Integrations Console"


def _phone_region(env: dict) -> str:
    import phonenumbers  # only here: the rest of the settings load without it

    region = (env.get("SYNC_PHONE_REGION") or "").strip().upper()
    if region and region not in phonenumbers.SUPPORTED_REGIONS:
        raise SettingsError(
            "SYNC_PHONE_REGION must be a country's two-letter code such as DE, GB or US (or unset), "
            f"got {region[:10]!r}."
        )
    return region


def load_settings(env: dict | None = None, secrets_dir: Path | None = None) -> Settings:
    """Read and validate every setting. Missing keys are generated only outside production."""
    env = dict(os.environ if env is None else env)
    toml = _secrets_toml(PROJECT_ROOT / ".streamlit" / "secrets.toml")
    secrets_dir = Path(env.get("CONSOLE_SECRETS_DIR") or secrets_dir or DEFAULT_SECRETS_DIR)
    production = env.get("CONSOLE_ENV", "development").lower() == "production"

    ring = toml.get("INTEGRATION_ENCRYPTION_KEYS")
    if isinstance(ring, list):  # secrets.toml may hold the ring as a list
        toml = {**toml, "INTEGRATION_ENCRYPTION_KEYS": ",".join(str(k) for k in ring)}
    ring_text, key_source = _lookup("INTEGRATION_ENCRYPTION_KEYS", env, toml)
    keys = _key_ring(ring_text) if ring_text is not None else ()
    key = keys[0] if keys else None  # INTEGRATION_ENCRYPTION_KEYS wins over INTEGRATION_ENCRYPTION_KEY
    if key is None:
        key, key_source = _lookup("INTEGRATION_ENCRYPTION_KEY", env, toml)
    if key is None and env.get("INTEGRATION_ENCRYPTION_KEY_FILE"):
        key_file = Path(env["INTEGRATION_ENCRYPTION_KEY_FILE"])
        key, key_source = _generated_secret(key_file, "INTEGRATION_ENCRYPTION_KEY", True), str(key_file)
    if key is None:
        if production:
            raise SettingsError(
                "INTEGRATION_ENCRYPTION_KEY (or INTEGRATION_ENCRYPTION_KEYS) is not set. Generate one with "
                "`python manage.py keys generate` and set it in the environment or in "
                ".streamlit/secrets.toml, then restart."
            )
        key_file = secrets_dir / "encryption.key"
        key, key_source = _generated_secret(key_file, "INTEGRATION_ENCRYPTION_KEY", True), str(key_file)

    cookie_key, _ = _lookup("COOKIE_KEY", env, toml)
    if cookie_key is None:
        if production:
            raise SettingsError("COOKIE_KEY is not set. Set a long random value and restart.")
        cookie_key = _generated_secret(secrets_dir / "cookie.key", "COOKIE_KEY", False)
    if len(cookie_key) < 32:
        raise SettingsError("COOKIE_KEY must be at least 32 characters long.")

    cookie_name = env.get("COOKIE_NAME", "integrations_console_auth")
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", cookie_name):
        raise SettingsError("COOKIE_NAME may use only letters, digits, '_' and '-' (at most 64).")

    database_url, _ = _lookup("DATABASE_URL", env, toml)
    widget_base_url, _ = _lookup("CHATWOOT_WIDGET_BASE_URL", env, toml)
    if widget_base_url is not None:
        widget_base_url = widget_base_url.strip()
        if problem := base_url_problem(widget_base_url):
            raise SettingsError(f"CHATWOOT_WIDGET_BASE_URL is not usable: {problem}")
        widget_base_url = widget_base_url.rstrip("/")
    return Settings(
        database_url=database_url or DEFAULT_DATABASE_URL,
        encryption_key=key,
        encryption_keys=keys or (key,),
        encryption_key_source=key_source,
        cookie_key=cookie_key,
        cookie_name=cookie_name,
        cookie_expiry_days=_number("COOKIE_EXPIRY_DAYS", env.get("COOKIE_EXPIRY_DAYS"), 1, 0.01, 30),
        http_connect_timeout=_number("HTTP_CONNECT_TIMEOUT", env.get("HTTP_CONNECT_TIMEOUT"), 5, 0.1, 60),
        http_read_timeout=_number("HTTP_READ_TIMEOUT", env.get("HTTP_READ_TIMEOUT"), 15, 0.1, 120),
        http_max_retries=int(_number("HTTP_MAX_RETRIES", env.get("HTTP_MAX_RETRIES"), 2, 0, 5)),
        production=production,
        chatwoot_widget_base_url=widget_base_url or None,
        outbound_allow=_outbound_allow(env, toml),
        check_concurrency=int(_number("CHECK_CONCURRENCY", env.get("CHECK_CONCURRENCY"), 16, 1, 64)),
        check_per_host=int(_number("CHECK_PER_HOST", env.get("CHECK_PER_HOST"), 2, 1, 16)),
        stale_after_hours=_number("STALE_AFTER_HOURS", env.get("STALE_AFTER_HOURS"), 24, 0.1, 24 * 90),
        check_history_retention_days=int(
            _number("CHECK_HISTORY_RETENTION_DAYS", env.get("CHECK_HISTORY_RETENTION_DAYS"), 90, 1, 3650)
        ),
        **_engine_settings(env, database_url or DEFAULT_DATABASE_URL),
        smtp=_smtp(env, toml),
        alert_group_window_seconds=_number(
            "ALERT_GROUP_WINDOW_SECONDS", env.get("ALERT_GROUP_WINDOW_SECONDS"), 120, 0, 3600
        ),
        alert_incident_threshold=int(
            _number("ALERT_INCIDENT_THRESHOLD", env.get("ALERT_INCIDENT_THRESHOLD"), 5, 2, 1000)
        ),
        alert_max_attempts=int(_number("ALERT_MAX_ATTEMPTS", env.get("ALERT_MAX_ATTEMPTS"), 6, 1, 20)),
        public_base_url=_public_base_url(env, toml),
        company_name=_company_name(env),
        sync_phone_region=_phone_region(env),
    )


def _engine_settings(env: dict, database_url: str) -> dict:
    redis_url = (env.get("REDIS_URL") or "").strip() or None
    if redis_url is not None and not redis_url.startswith(("redis://", "rediss://", "unix://")):
        raise SettingsError("REDIS_URL must start with redis://, rediss:// or unix://, e.g. redis://127.0.0.1:6379/0.")
    queue_path = (env.get("ENGINE_QUEUE_PATH") or "").strip() or _queue_beside(database_url)
    interval = env.get("CHECK_INTERVAL_SECONDS")
    day = 24 * 3600.0
    return {
        "redis_url": redis_url,
        "engine_queue_name": _queue_name(env.get("ENGINE_QUEUE_NAME")),
        "engine_queue_path": queue_path,
        "engine_embedded_workers": int(
            _number("ENGINE_EMBEDDED_WORKERS", env.get("ENGINE_EMBEDDED_WORKERS"), 0 if redis_url else 4, 0, 64)
        ),
        "engine_tick_seconds": _tick(env.get("ENGINE_TICK_SECONDS")),
        "check_interval_override": _number("CHECK_INTERVAL_SECONDS", interval, 0, 1, 31 * day) if interval else None,
        "health_failing_after_checks": int(
            _number("HEALTH_FAILING_AFTER_CHECKS", env.get("HEALTH_FAILING_AFTER_CHECKS"), 3, 1, 1000)
        ),
        "health_failing_after_seconds": _number(
            "HEALTH_FAILING_AFTER_SECONDS", env.get("HEALTH_FAILING_AFTER_SECONDS"), 3600, 1, 90 * day
        ),
        "health_pause_after_seconds": _number(
            "HEALTH_PAUSE_AFTER_SECONDS", env.get("HEALTH_PAUSE_AFTER_SECONDS"), 7 * day, 1, 365 * day
        ),
        "health_pause_after_checks": int(
            _number("HEALTH_PAUSE_AFTER_CHECKS", env.get("HEALTH_PAUSE_AFTER_CHECKS"), 30, 1, 100000)
        ),
        "health_recover_after_checks": int(
            _number("HEALTH_RECOVER_AFTER_CHECKS", env.get("HEALTH_RECOVER_AFTER_CHECKS"), 1, 1, 1000)
        ),
    }


def _queue_name(raw: str | None) -> str:
    name = (raw or "integrations-console").strip()
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", name):
        raise SettingsError("ENGINE_QUEUE_NAME may use only letters, digits, '_', '.' and '-' (at most 64).")
    return name


def _queue_beside(database_url: str) -> str:
    """The SQLite queue file: beside a SQLite database, else in data/ of the project."""
    if database_url.startswith("sqlite:///") and database_url != "sqlite:///:memory:":
        database = Path(database_url.removeprefix("sqlite:///"))
        return str(database.with_name(database.stem + ".tasks.sqlite3"))
    return str(PROJECT_ROOT / "data" / "tasks.sqlite3")


def _tick(raw: str | None) -> int:
    """Huey's scheduler wakes up on a whole number of seconds that divides a minute."""
    tick = int(_number("ENGINE_TICK_SECONDS", raw, 60, 1, 60))
    if 60 % tick:
        raise SettingsError(
            f"ENGINE_TICK_SECONDS must divide 60 (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30 or 60), got {tick}."
        )
    return tick
