"""Every connection check's outcome in one of a few classes, each with a plain sentence and a next step.

The class comes from what the check's outbound calls met (core.http.observe: the last HTTP status, the
transport failure, the OAuth error code, the database driver's code), never from the English a provider
wrote. A refused credential (401, OAuth invalid_grant and its kin, a database's bad password) also sets
needs_reconnect: the person must enter new credentials or reconnect; a 403 is a permission problem instead.

How core.integrations.checks calls it, in ``_run_test``::

    with deadline(policy.check_deadline), observe() as seen:
        result = provider.test(plain, context)
    classified = classify(result, seen)

An unexpected exception of the provider's, caught inside the same ``observe`` block, is classified with
that block's ``seen`` too. A result the console makes itself before any provider runs (not available, a
stored secret that cannot be decrypted, an unsendable stored value, a form that fails validation) is
classified with ``classify(result, None)``: configuration. Its own refusals are classified by their error
code: "rate_limited" (the console's test limits) and "busy" (a check of it is under way) as rate_limited.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from core.http import Observed, Transport
from core.results import TestResult


class CheckClass(StrEnum):
    OK = "ok"
    AUTH = "auth"
    PERMISSION = "permission"
    NETWORK = "network"
    TLS = "tls"
    TIMEOUT = "timeout"
    RATE_LIMITED = "rate_limited"
    PROVIDER_ERROR = "provider_error"
    CONFIGURATION = "configuration"


# (what happened, what to do next), for a person. Fixed text: nothing from a server or a configuration.
CLASS_TEXT: dict[CheckClass, tuple[str, str]] = {
    CheckClass.OK: ("The connection works.", "Nothing to do."),
    CheckClass.AUTH: ("The service refused the credentials.", "Reconnect or enter new credentials, then test again."),
    CheckClass.PERMISSION: (
        "The service accepted the credentials, but they lack permission for what the check reads.",
        "Give this user or app the missing permission (or use one that has it), then test again.",
    ),
    CheckClass.NETWORK: (
        "The service could not be reached: the host name was not found, or the connection was refused or cut.",
        "Check the address and port, that the server is running, and that a firewall lets this server through.",
    ),
    CheckClass.TLS: (
        "The secure connection (TLS) could not be set up: the certificate was not trusted, or the server and "
        "the settings disagree about encryption.",
        "Check that the address uses the certificate's host name, that the certificate is valid, and that the "
        "SSL setting matches what the server offers.",
    ),
    CheckClass.TIMEOUT: (
        "The service did not answer in time.",
        "Test again later; if it keeps happening, check the address and the service's status.",
    ),
    CheckClass.RATE_LIMITED: (
        "Too many requests: the service, or this console, is limiting them right now.",
        "Wait a minute, then test again.",
    ),
    CheckClass.PROVIDER_ERROR: (
        "The service had a problem of its own and could not answer the check as expected.",
        "Test again later, and check the service's status page if it keeps failing.",
    ),
    CheckClass.CONFIGURATION: (
        "The integration's settings do not lead to a working check (an address, a path, a name or another field).",
        "Edit the integration, correct the setting the message names, then test again.",
    ),
}


@dataclass(frozen=True)
class Classified:
    check_class: CheckClass
    http_status: int | None = None  # the answer the class was read from (None when none decided it)
    code: str | None = None  # the driver's error code ("1045", "28P01") or the OAuth error ("invalid_grant")
    needs_reconnect: bool = False  # the credential itself was refused

    @property
    def sentence(self) -> str:
        return CLASS_TEXT[self.check_class][0]

    @property
    def next_step(self) -> str:
        return CLASS_TEXT[self.check_class][1]


# The error codes of results the console makes itself (core.integrations.checks).
_CONSOLE_ERRORS = {
    "rate_limited": CheckClass.RATE_LIMITED,
    "busy": CheckClass.RATE_LIMITED,
    "not available": CheckClass.CONFIGURATION,
    "unsendable stored value": CheckClass.CONFIGURATION,
}

_TRANSPORT = {
    Transport.TLS: CheckClass.TLS,
    Transport.TIMEOUT: CheckClass.TIMEOUT,
    Transport.NETWORK: CheckClass.NETWORK,
    Transport.BLOCKED: CheckClass.CONFIGURATION,  # the address guard: another address, or OUTBOUND_ALLOW
    Transport.TOO_LARGE: CheckClass.CONFIGURATION,  # not an API's answer: the address points elsewhere
    Transport.REDIRECT: CheckClass.CONFIGURATION,  # the service moved: enter its new address
    Transport.INVALID_ADDRESS: CheckClass.CONFIGURATION,
}

# OAuth error codes (core.oauth.KNOWN_ERRORS): (class, whether the credential itself was refused).
_OAUTH = {
    "invalid_grant": (CheckClass.AUTH, True),  # the refresh token or password grant is no longer valid
    "invalid_client": (CheckClass.AUTH, True),
    "invalid_client_secret": (CheckClass.AUTH, True),
    "invalid_client_id": (CheckClass.AUTH, True),
    "invalid_client_credentials": (CheckClass.AUTH, True),
    "invalid_code": (CheckClass.AUTH, True),  # Zoho: the refresh token is unknown or revoked
    "unauthorized_client": (CheckClass.PERMISSION, False),  # this client may not use this grant
    "access_denied": (CheckClass.PERMISSION, False),
    "inactive_user": (CheckClass.PERMISSION, False),
    "inactive_org": (CheckClass.PERMISSION, False),
    "invalid_scope": (CheckClass.CONFIGURATION, False),
    "invalid_request": (CheckClass.CONFIGURATION, False),
    "unsupported_grant_type": (CheckClass.CONFIGURATION, False),
    "server_error": (CheckClass.PROVIDER_ERROR, False),
    "temporarily_unavailable": (CheckClass.PROVIDER_ERROR, False),
    "rate_limit_exceeded": (CheckClass.RATE_LIMITED, False),
}

# PostgreSQL SQLSTATEs, by exact code and then by class (the first two characters).
_POSTGRES = {
    "28P01": (CheckClass.AUTH, True),  # invalid_password
    "28000": (CheckClass.AUTH, False),  # invalid_authorization_specification: no such role, or pg_hba
    "3D000": (CheckClass.CONFIGURATION, False),  # invalid_catalog_name: no such database
    "42501": (CheckClass.PERMISSION, False),  # insufficient_privilege
    "53300": (CheckClass.RATE_LIMITED, False),  # too_many_connections
    "57014": (CheckClass.TIMEOUT, False),  # query_canceled (statement_timeout)
}
_POSTGRES_CLASSES = {
    "08": CheckClass.NETWORK,  # connection exception
    "28": CheckClass.AUTH,
    "3D": CheckClass.CONFIGURATION,
    "42": CheckClass.PERMISSION,
    "53": CheckClass.PROVIDER_ERROR,  # insufficient resources
    "57": CheckClass.PROVIDER_ERROR,  # operator intervention (starting up, shutting down)
    "58": CheckClass.PROVIDER_ERROR,  # system error
    "XX": CheckClass.PROVIDER_ERROR,  # internal error
}

# PyMySQL / MySQL / MariaDB error numbers.
_MYSQL = {
    "1045": (CheckClass.AUTH, True),  # access denied (user name or password)
    "1044": (CheckClass.PERMISSION, False),  # no access to the database
    "1142": (CheckClass.PERMISSION, False),  # command denied
    "1227": (CheckClass.PERMISSION, False),  # access denied; you need a privilege
    "1130": (CheckClass.PERMISSION, False),  # this host is not allowed to connect
    "1129": (CheckClass.PERMISSION, False),  # host blocked after too many failed connections
    "1049": (CheckClass.CONFIGURATION, False),  # unknown database
    "3159": (CheckClass.TLS, False),  # the server requires a secure transport
    "2026": (CheckClass.TLS, False),  # SSL connection error
    "1040": (CheckClass.RATE_LIMITED, False),  # too many connections
    "1203": (CheckClass.RATE_LIMITED, False),  # the user has too many connections
    "1226": (CheckClass.RATE_LIMITED, False),  # the user exceeded a resource limit
    "2003": (CheckClass.NETWORK, False),  # cannot connect
    "2005": (CheckClass.NETWORK, False),  # unknown host
    "2006": (CheckClass.NETWORK, False),  # server has gone away
    "2013": (CheckClass.NETWORK, False),  # lost connection
}


# MongoDB server error codes (error_codes.yml), as pymongo's OperationFailure.code gives them.
_MONGODB = {
    "18": (CheckClass.AUTH, True),  # AuthenticationFailed
    "13": (CheckClass.PERMISSION, False),  # Unauthorized
    "50": (CheckClass.TIMEOUT, False),  # MaxTimeMSExpired
    "202": (CheckClass.TIMEOUT, False),  # NetworkInterfaceExceededTimeLimit
    "91": (CheckClass.PROVIDER_ERROR, False),  # ShutdownInProgress
    "189": (CheckClass.PROVIDER_ERROR, False),  # PrimarySteppedDown
}


def classify_status(status: int) -> Classified:
    """The class of a check whose deciding answer had this HTTP status."""
    if status == 401:
        return Classified(CheckClass.AUTH, status, needs_reconnect=True)
    if status == 403:
        return Classified(CheckClass.PERMISSION, status)
    if status == 408:
        return Classified(CheckClass.TIMEOUT, status)
    if status == 429:
        return Classified(CheckClass.RATE_LIMITED, status)
    if status >= 500:
        return Classified(CheckClass.PROVIDER_ERROR, status)
    if status >= 400:  # 400, 404, 405, 410, 422, ...: the address, path or request the settings make
        return Classified(CheckClass.CONFIGURATION, status)
    return Classified(CheckClass.PROVIDER_ERROR, status)  # answered, but not as the check expects


def _database(seen: Observed) -> Classified:
    code = seen.database_code or ""
    if seen.database_engine == "postgresql":
        check_class, reconnect = _POSTGRES.get(
            code, (_POSTGRES_CLASSES.get(code[:2], CheckClass.PROVIDER_ERROR), False)
        )
    elif seen.database_engine == "mongodb":
        check_class, reconnect = _MONGODB.get(code, (CheckClass.PROVIDER_ERROR, False))
    else:
        check_class, reconnect = _MYSQL.get(code, (CheckClass.PROVIDER_ERROR, False))
    return Classified(check_class, None, code or None, reconnect)


def classify(result: TestResult, seen: Observed | None) -> Classified:
    """The class of a check's result, from what its calls met (`seen`, from core.http.observe).

    seen is None for a result the console made before any provider ran (see the module docstring)."""
    if result.success:
        return Classified(CheckClass.OK, seen.status if seen is not None else None)
    if result.error in _CONSOLE_ERRORS:
        return Classified(_CONSOLE_ERRORS[result.error])
    if seen is None or "field_errors" in result.details:
        return Classified(CheckClass.CONFIGURATION)  # validation, decryption, the provider's own field check
    if seen.latest == "oauth":
        code = seen.oauth_error or "other"
        check_class, reconnect = _OAUTH.get(code, (CheckClass.AUTH, False))
        return Classified(check_class, seen.status, code, reconnect)
    if seen.latest == "database":
        return _database(seen)
    if seen.latest == "transport" and seen.transport is not None:
        return Classified(_TRANSPORT[seen.transport])
    if seen.latest == "http" and seen.status is not None:
        return classify_status(seen.status)
    # Nothing was sent or met: the provider stopped on its own, or failed unexpectedly.
    return Classified(CheckClass.PROVIDER_ERROR)


__all__ = ["CLASS_TEXT", "CheckClass", "Classified", "classify", "classify_status"]
