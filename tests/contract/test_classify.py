"""Connection checks classified (core.integrations.classify) from what real provider tests met, against fakes
on 127.0.0.1: pytest-httpserver, a TLS server with a self-signed certificate, a slow server, a closed port,
a fake PostgreSQL, and the real PostgreSQL and MariaDB servers when they answer.

Each test runs a provider's test as core.integrations.checks will: ``with observe() as seen:`` around
``provider.test(...)``, then ``classify(result, seen)``.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import re
import secrets
import ssl

import psycopg
import pymysql
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Response

from core.catalog import Provider, TestContext
from core.http import HttpPolicy, deadline, make_session, observe
from core.integrations.classify import CheckClass, Classified, classify
from core.results import TestResult
from core.tokens import MemoryTokens
from providers import custom, database, salesforce
from tests.conftest import LOOPBACK_ALLOW
from tests.fakes.postgres import FakePostgres
from tests.fakes.slow_hosts import SlowHosts

TOKEN = "crm-bearer-" + secrets.token_hex(8)
CLIENT_SECRET = "crm-client-secret-" + secrets.token_hex(8)
DB_PASSWORD = "Wrong-db-pass-" + secrets.token_hex(8)
POLICY = HttpPolicy(connect_timeout=1, read_timeout=1, max_retries=0, outbound_allow=LOOPBACK_ALLOW)


def checked(provider: Provider, config: dict, policy: HttpPolicy = POLICY) -> tuple[TestResult, Classified]:
    """The provider's real test, observed and classified as core.integrations.checks will do it."""
    assert provider.test is not None
    session = make_session(policy)
    try:
        with observe() as seen:
            result = provider.test(config, TestContext(session, MemoryTokens()))
    finally:
        session.close()
    return result, classify(result, seen)


def crm(url: str, path: str = "/health", **changes) -> dict:
    """A Custom CRM (Bearer token) whose test GETs url + path."""
    config = {
        "name": "Acme CRM",
        "apiEndpoint": url,
        "authType": "BEARER",
        "healthPath": path,
        "credentials": json.dumps({"token": TOKEN}),
    }
    return config | changes


def oauth_crm(url: str, token_url: str) -> dict:
    credentials = json.dumps({"clientId": "crm-client", "clientSecret": CLIENT_SECRET})
    return crm(url, authType="OAUTH2", tokenUrl=token_url, clientAuth="header", credentials=credentials)


def assert_class(classified: Classified, check_class: CheckClass, *, reconnect: bool = False) -> None:
    assert (classified.check_class, classified.needs_reconnect) == (check_class, reconnect), classified


# ----- HTTP statuses of the check's own call ------------------------------------------------------------


def test_a_working_check_is_ok(httpserver):
    httpserver.expect_request("/health").respond_with_json({"ok": True})
    result, classified = checked(custom.PROVIDER, crm(httpserver.url_for("/")))

    assert result.success, result.message
    assert classified == Classified(CheckClass.OK, 200)


@pytest.mark.parametrize(
    ("status", "check_class", "reconnect"),
    [
        (401, CheckClass.AUTH, True),
        (403, CheckClass.PERMISSION, False),
        (429, CheckClass.RATE_LIMITED, False),
        (500, CheckClass.PROVIDER_ERROR, False),
        (503, CheckClass.PROVIDER_ERROR, False),
        (404, CheckClass.CONFIGURATION, False),
        (405, CheckClass.CONFIGURATION, False),
        (400, CheckClass.CONFIGURATION, False),
    ],
)
def test_the_status_of_the_check_decides_its_class(httpserver, status, check_class, reconnect):
    httpserver.expect_request("/health").respond_with_json({"error": "no"}, status=status)
    result, classified = checked(custom.PROVIDER, crm(httpserver.url_for("/")))

    assert not result.success
    assert_class(classified, check_class, reconnect=reconnect)
    assert classified.http_status == status
    assert classified.code is None


def test_the_last_answer_is_the_one_that_counts(httpserver):
    """A cached token refused (401), a new one issued, and the check then answered 503: provider_error."""
    httpserver.expect_request("/oauth/token").respond_with_json({"access_token": "issued", "expires_in": 3600})
    statuses = [200, 401, 503]
    httpserver.expect_request("/health").respond_with_handler(lambda _request: Response("{}", statuses.pop(0)))
    config = oauth_crm(httpserver.url_for("/"), httpserver.url_for("/oauth/token"))
    tokens, session = MemoryTokens(), make_session(POLICY)
    try:
        assert custom.test_connection(config, TestContext(session, tokens)).success  # caches the token
        with observe() as seen:
            result = custom.test_connection(config, TestContext(session, tokens))
    finally:
        session.close()

    assert statuses == []
    assert seen.responses == 3  # 401, the new token, 503
    assert_class(classify(result, seen), CheckClass.PROVIDER_ERROR)


def test_the_observed_host_has_no_path_or_query(httpserver):
    httpserver.expect_request("/health").respond_with_json({}, status=404)
    with observe() as seen:
        checked(custom.PROVIDER, crm(httpserver.url_for("/"), path="/health?key=" + TOKEN))

    assert (seen.status, seen.host) == (404, httpserver.host)  # 127.0.0.1 (localhost when a unit test made it)
    assert TOKEN not in repr(seen)


# ----- transport failures ----------------------------------------------------------------------------------


def test_a_closed_port_is_a_network_failure(closed_port):
    result, classified = checked(custom.PROVIDER, crm(f"http://127.0.0.1:{closed_port}/"))

    assert not result.success
    assert classified == Classified(CheckClass.NETWORK)


def _self_signed(tmp_path) -> tuple[str, str]:
    """A certificate for 127.0.0.1 that no authority signed."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "self-signed.pem", tmp_path / "self-signed.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return str(cert_path), str(key_path)


@pytest.fixture
def tls_server(tmp_path):
    cert, key = _self_signed(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = HTTPServer(host="127.0.0.1", port=0, ssl_context=context)
    server.expect_request("/health").respond_with_json({"ok": True})
    server.start()
    try:
        yield server
    finally:
        server.clear()
        server.stop()


def test_a_self_signed_certificate_is_a_tls_failure(tls_server):
    result, classified = checked(custom.PROVIDER, crm(f"https://127.0.0.1:{tls_server.port}/"))

    assert not result.success
    assert classified == Classified(CheckClass.TLS)
    assert tls_server.log == []  # the handshake failed: no request reached it


@pytest.fixture
def slow_host():
    hosts = SlowHosts(1, delay=3.0).start()
    try:
        yield hosts.urls[0]
    finally:
        hosts.stop()


def test_a_server_slower_than_the_read_timeout_is_a_timeout(slow_host):
    policy = HttpPolicy(connect_timeout=1, read_timeout=0.5, max_retries=0, outbound_allow=LOOPBACK_ALLOW)
    result, classified = checked(custom.PROVIDER, crm(slow_host), policy)

    assert not result.success
    assert classified == Classified(CheckClass.TIMEOUT)


def test_the_checks_total_deadline_is_a_timeout(slow_host):
    policy = HttpPolicy(connect_timeout=1, read_timeout=10, max_retries=0, outbound_allow=LOOPBACK_ALLOW)
    with deadline(0.5):  # the check's deadline, shorter than the read timeout
        result, classified = checked(custom.PROVIDER, crm(slow_host), policy)

    assert not result.success
    assert classified == Classified(CheckClass.TIMEOUT)


def test_an_address_the_guard_refuses_is_configuration(httpserver):
    httpserver.expect_request("/health").respond_with_json({"ok": True})
    guarded = HttpPolicy(connect_timeout=1, read_timeout=1, max_retries=0)  # loopback is not allowed
    result, classified = checked(custom.PROVIDER, crm(httpserver.url_for("/")), guarded)

    assert not result.success
    assert classified == Classified(CheckClass.CONFIGURATION)
    assert httpserver.log == []


def test_a_failure_after_a_good_answer_outranks_it(httpserver, closed_port):
    """The token endpoint answers 200, then the health check's host refuses the connection."""
    httpserver.expect_request("/oauth/token").respond_with_json({"access_token": "issued", "expires_in": 60})
    result, classified = checked(
        custom.PROVIDER, oauth_crm(f"http://127.0.0.1:{closed_port}/", httpserver.url_for("/oauth/token"))
    )

    assert not result.success
    assert len(httpserver.log) == 1
    assert classified == Classified(CheckClass.NETWORK)


# ----- OAuth token endpoints --------------------------------------------------------------------------------


@pytest.fixture
def fake_salesforce(monkeypatch, httpserver):
    """Salesforce's My Domain token endpoint becomes /<host>/services/oauth2/token on httpserver."""
    base = f"http://{httpserver.host}:{httpserver.port}"
    monkeypatch.setattr(salesforce, "LOGIN_BASE", base + "/{host}")
    monkeypatch.setattr(salesforce, "INSTANCE_URL_PATTERN", re.escape(base) + "/instance")
    return httpserver


def test_salesforce_invalid_grant_needs_a_reconnect(fake_salesforce):
    fake_salesforce.expect_request("/acme.my.salesforce.com/services/oauth2/token", method="POST").respond_with_json(
        {"error": "invalid_grant", "error_description": "expired access/refresh token"}, status=400
    )
    config = {
        "instanceUrl": "https://acme.my.salesforce.com",
        "clientId": "3MVG9consumer.key",
        "clientSecret": CLIENT_SECRET,
        "refreshToken": "5Aep861refresh." + secrets.token_hex(8),
    }
    result, classified = checked(salesforce.PROVIDER, config)

    assert not result.success
    assert classified == Classified(CheckClass.AUTH, 400, "invalid_grant", needs_reconnect=True)


def test_an_unknown_client_at_the_token_endpoint_needs_a_reconnect(httpserver):
    httpserver.expect_request("/oauth/token").respond_with_json({"error": "invalid_client"}, status=401)
    result, classified = checked(
        custom.PROVIDER, oauth_crm(httpserver.url_for("/"), httpserver.url_for("/oauth/token"))
    )

    assert not result.success
    assert classified == Classified(CheckClass.AUTH, 401, "invalid_client", needs_reconnect=True)


def test_an_oauth_error_the_console_does_not_know_is_never_kept_as_it_was_sent(httpserver):
    """A token endpoint's error field is its own text: it could echo the client secret."""
    httpserver.expect_request("/oauth/token").respond_with_json({"error": CLIENT_SECRET}, status=400)
    result, classified = checked(
        custom.PROVIDER, oauth_crm(httpserver.url_for("/"), httpserver.url_for("/oauth/token"))
    )

    assert not result.success
    assert classified == Classified(CheckClass.AUTH, 400, "other")
    assert CLIENT_SECRET not in repr(classified) + classified.sentence + classified.next_step


# ----- databases ----------------------------------------------------------------------------------------------


def db_config(port: int, **changes) -> dict:
    config = {"host": "127.0.0.1", "port": port, "database": "postgres", "user": "postgres", "sslMode": "disable"}
    return config | {"password": DB_PASSWORD} | changes


@pytest.fixture
def fake_postgres():
    made: list[FakePostgres] = []

    def make(behaviour: str) -> FakePostgres:
        made.append(FakePostgres(behaviour))
        return made[-1]

    yield make
    for fake in made:
        fake.close()


def test_postgres_bad_password_needs_a_reconnect(fake_postgres):
    fake = fake_postgres("reject_password")
    result, classified = checked(database.POSTGRESQL, db_config(fake.port))

    assert fake.passwords == [DB_PASSWORD]
    assert not result.success
    assert classified == Classified(CheckClass.AUTH, None, "28P01", needs_reconnect=True)


def test_postgres_that_requires_encryption_is_a_tls_failure(fake_postgres):
    fake = fake_postgres("ssl_required")
    result, classified = checked(database.POSTGRESQL, db_config(fake.port))

    assert not result.success
    assert classified == Classified(CheckClass.TLS)


@pytest.fixture
def postgres():
    try:
        psycopg.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres", connect_timeout=3).close()
    except psycopg.Error as exc:
        reason = f"PostgreSQL does not answer on 127.0.0.1:5432 as postgres ({str(exc).splitlines()[0]})"
        print(reason)
        pytest.skip(reason)


@pytest.mark.usefixtures("postgres")
def test_postgres_database_that_does_not_exist_is_configuration():
    result, classified = checked(database.POSTGRESQL, db_config(5432, database="ic_missing_" + secrets.token_hex(4)))

    assert not result.success
    assert classified == Classified(CheckClass.CONFIGURATION, None, "3D000")


@pytest.fixture
def mariadb():
    try:
        pymysql.connect(host="127.0.0.1", port=3306, user="root", password="", connect_timeout=3).close()
    except pymysql.MySQLError as exc:
        reason = f"MySQL/MariaDB does not answer on 127.0.0.1:3306 as root without a password ({exc})"
        print(reason)
        pytest.skip(reason)


@pytest.mark.usefixtures("mariadb")
def test_mariadb_access_denied_needs_a_reconnect():
    result, classified = checked(database.MYSQL, db_config(3306, user="root", database="test"))

    assert not result.success
    assert classified == Classified(CheckClass.AUTH, None, "1045", needs_reconnect=True)


@pytest.mark.usefixtures("mariadb")
def test_mariadb_database_that_does_not_exist_is_configuration():
    config = db_config(3306, user="root", password="", database="ic_missing_" + secrets.token_hex(4))
    result, classified = checked(database.MYSQL, config)

    assert not result.success
    assert classified == Classified(CheckClass.CONFIGURATION, None, "1049")


@pytest.mark.parametrize("provider", [database.POSTGRESQL, database.MYSQL], ids=["postgresql", "mysql"])
def test_a_database_on_a_closed_port_is_a_network_failure(provider, closed_port):
    result, classified = checked(provider, db_config(closed_port))

    assert not result.success
    assert classified.check_class == CheckClass.NETWORK
    assert not classified.needs_reconnect


def test_a_database_address_the_guard_refuses_is_configuration(fake_postgres):
    fake = fake_postgres("reject_password")
    guarded = HttpPolicy(connect_timeout=1, read_timeout=1, max_retries=0)  # loopback is not allowed
    result, classified = checked(database.POSTGRESQL, db_config(fake.port), guarded)

    assert not result.success
    assert fake.startups == []
    assert classified == Classified(CheckClass.CONFIGURATION)
