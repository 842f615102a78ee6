"""The outbound address guard (core.http): which addresses are refused, the allow-list, redirects, DNS rebinding,
TLS on the host name, the database providers, and the OUTBOUND_ALLOW setting.

Nothing here leaves the machine: refused addresses are refused before any socket connects (a recording
connect fails the test otherwise), numeric host forms are parsed locally (no DNS question is asked), names
are answered by a patched resolver, and the only real connections go to servers on 127.0.0.1 / 127.0.0.2.
"""

from __future__ import annotations

import datetime
import ipaddress
import re
import socket
import ssl
import time

import psycopg
import pymysql
import pytest
import requests
from pytest_httpserver import HTTPServer

import app_context
from core.catalog import TestContext
from core.http import (
    BlockedAddressError,
    HttpPolicy,
    address_problem,
    describe_exception,
    make_session,
    parse_allow_list,
    vet_host,
)
from core.tokens import MemoryTokens
from providers import database
from tests.conftest import make_settings
from tests.loopback import guard

REAL_GETADDRINFO = socket.getaddrinfo


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch):
    """These tests ask for internal addresses on purpose: the console must refuse them before any socket
    connects, so only sockets are watched here (a connection to one still fails the test)."""
    yield from guard(monkeypatch, requests_too=False)


@pytest.fixture
def connects(monkeypatch) -> list[tuple]:
    """Every socket connect is recorded and refused: a test using this never opens a real connection."""
    seen: list[tuple] = []

    def connect(sock, address):
        seen.append(tuple(address[:2]))
        raise ConnectionRefusedError(111, "Connection refused (recorded by the test, nothing was sent)")

    monkeypatch.setattr(socket.socket, "connect", connect)
    return seen


class _Asked(list):
    answers: dict[str, list[str]]


@pytest.fixture
def resolver(monkeypatch) -> _Asked:
    """resolver.answers["name"] = ["first", "later", ...]: what each successive lookup of a name returns.

    Lookups are recorded in the list itself. Numeric hosts go to the system with AI_NUMERICHOST (no DNS);
    any other name fails the test, so no DNS question ever leaves the machine.
    """
    asked = _Asked()
    asked.answers = {}

    def getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):
        asked.append(host)
        if host in asked.answers:
            queue = asked.answers[host]
            address = queue.pop(0) if len(queue) > 1 else queue[0]  # the last answer repeats
            if ":" in address:
                return [(socket.AF_INET6, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, port, 0, 0))]
            return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, port))]
        if flags & socket.AI_NUMERICHOST or host == "localhost":  # local: /etc/hosts or the number itself
            return REAL_GETADDRINFO(host, port, family, type, proto, flags)
        pytest.fail(f"a DNS question would have been asked for {host!r}", pytrace=False)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return asked


def loopback_server(host: str = "127.0.0.1", ssl_context: ssl.SSLContext | None = None) -> HTTPServer:
    server = HTTPServer(host=host, port=0, ssl_context=ssl_context)
    server.start()
    return server


@pytest.fixture
def server():
    """An HTTP server on 127.0.0.1 (pytest-httpserver's own fixture listens on "localhost")."""
    running = loopback_server()
    try:
        yield running
    finally:
        running.clear()
        running.stop()


def session(*allow: str, retries: int = 0, connect_timeout: float = 1.0) -> requests.Session:
    return make_session(
        HttpPolicy(connect_timeout=connect_timeout, read_timeout=2, max_retries=retries, outbound_allow=allow)
    )


# ----- every class of address is refused, before any connection ---------------------------------------------

REFUSED = [
    # (host as written in the URL, what the refusal says about it)
    ("127.0.0.1", "127.0.0.1 is a loopback address"),
    ("127.255.255.254", "127.255.255.254 is a loopback address"),
    ("[::1]", "::1 is a loopback address"),
    ("10.1.2.3", "10.1.2.3 is a private address"),
    ("172.16.5.4", "172.16.5.4 is a private address"),
    ("192.168.1.1", "192.168.1.1 is a private address"),
    ("100.64.0.1", "100.64.0.1 is a shared address of a carrier-grade NAT"),
    ("169.254.169.254", "169.254.169.254 is a link-local address"),
    ("169.254.0.1", "169.254.0.1 is a link-local address"),
    ("[fe80::1]", "fe80::1 is a link-local address"),
    ("224.0.0.1", "224.0.0.1 is a multicast address"),
    ("[ff02::1]", "ff02::1 is a multicast address"),
    ("240.0.0.1", "240.0.0.1 is a reserved address"),
    ("255.255.255.255", "255.255.255.255 is a reserved address"),
    ("0.0.0.0", "0.0.0.0 is the unspecified address"),
    ("[::]", ":: is the unspecified address"),
    ("[fc00::1]", "fc00::1 is a unique-local IPv6 address"),
    ("[fd12:3456::1]", "fd12:3456::1 is a unique-local IPv6 address"),
    ("[fec0::1]", "fec0::1 is a site-local IPv6 address"),
    ("192.0.2.1", "192.0.2.1 is a special-purpose address, not a public internet address"),
    ("198.18.0.1", "198.18.0.1 is a special-purpose address"),
    # IPv6 forms that stand for (or tunnel to) an IPv4 address
    ("[::ffff:127.0.0.1]", "::ffff:127.0.0.1 is an IPv4-mapped IPv6 address (it stands for 127.0.0.1)"),
    ("[::ffff:10.0.0.1]", "an IPv4-mapped IPv6 address (it stands for 10.0.0.1)"),
    ("[::ffff:169.254.169.254]", "an IPv4-mapped IPv6 address (it stands for 169.254.169.254)"),
    ("[0:0:0:0:0:ffff:7f00:1]", "an IPv4-mapped IPv6 address (it stands for 127.0.0.1)"),
    ("[::127.0.0.1]", "an IPv4-compatible IPv6 address (it stands for 127.0.0.1)"),
    ("[2002:a00:1::]", "a 6to4 address that leads to 10.0.0.1, a private address"),
    ("[2002:7f00:1::1]", "a 6to4 address that leads to 127.0.0.1, a loopback address"),
    ("[2001:0:4136:e378:8000:63bf:3fff:fdd2]", "a Teredo address that leads to 192.0.2.45"),
    ("[64:ff9b::a00:1]", "a NAT64 address that leads to 10.0.0.1, a private address"),
    # numeric tricks: decimal, octal, hex and short forms of an IPv4 address
    ("2130706433", "2130706433 stands for 127.0.0.1, a loopback address"),
    ("0177.0.0.1", "0177.0.0.1 stands for 127.0.0.1, a loopback address"),
    ("0x7f.1", "0x7f.1 stands for 127.0.0.1, a loopback address"),
    ("0x7f000001", "0x7f000001 stands for 127.0.0.1, a loopback address"),
    ("017700000001", "017700000001 stands for 127.0.0.1, a loopback address"),
    ("127.1", "127.1 stands for 127.0.0.1, a loopback address"),
    ("127.0.1", "127.0.1 stands for 127.0.0.1, a loopback address"),
    ("0x0a.0x01.0x02.0x03", "stands for 10.1.2.3, a private address"),
    ("10.1", "10.1 stands for 10.0.0.1, a private address"),
    ("169.254.43518", "169.254.43518 stands for 169.254.169.254, a link-local address"),
    ("0", "0 stands for 0.0.0.0, the unspecified address"),
    ("127.0.0.1.", "stands for 127.0.0.1, a loopback address"),
]


@pytest.mark.parametrize(("host", "says"), REFUSED, ids=[host for host, _ in REFUSED])
def test_every_internal_address_class_is_refused_before_connecting(host, says, connects, resolver):
    with pytest.raises(BlockedAddressError) as caught:
        session().get(f"http://{host}:8080/api")

    message = str(caught.value)
    assert message.startswith("refused: ")
    assert says in message
    assert "An administrator can allow it with OUTBOUND_ALLOW=" in message
    assert connects == []  # refused before any connection
    assert resolver == []  # a number is read here, never asked of DNS
    assert isinstance(caught.value, requests.RequestException)


def test_the_refusal_names_the_rule_and_the_setting_in_plain_words():
    with pytest.raises(BlockedAddressError) as caught:
        session().get("http://10.1.2.3/")
    assert str(caught.value) == (
        "refused: 10.1.2.3 is a private address; this console only connects to public addresses. An "
        "administrator can allow it with OUTBOUND_ALLOW=10.1.2.3 (a comma-separated list: keep any entries "
        "already there)."
    )
    assert describe_exception(caught.value, "Chatwoot") == (
        "The address of Chatwoot was refused: 10.1.2.3 is a private address; this console only connects to "
        "public addresses. An administrator can allow it with OUTBOUND_ALLOW=10.1.2.3 (a comma-separated list: "
        "keep any entries already there)."
    )


def test_a_name_that_resolves_to_an_internal_address_is_refused_naming_the_name(connects, resolver):
    resolver.answers["chatwoot.internal"] = ["10.20.0.7"]
    with pytest.raises(BlockedAddressError) as caught:
        session().get("https://chatwoot.internal/api/v1/profile")
    assert "chatwoot.internal resolves to 10.20.0.7, a private address" in str(caught.value)
    assert "OUTBOUND_ALLOW=chatwoot.internal" in str(caught.value)
    assert connects == []


def test_localhost_is_refused(connects):
    with pytest.raises(BlockedAddressError, match=r"localhost resolves to (127\.0\.0\.1|::1), a loopback address"):
        session().get("http://localhost:8080/")
    assert connects == []


def test_credentials_in_the_url_do_not_hide_the_host(connects, resolver):
    with pytest.raises(BlockedAddressError, match=re.escape("169.254.169.254 is a link-local address")):
        session().get("http://crm.example.com@169.254.169.254/latest/meta-data/")
    assert connects == [] and resolver == []


def test_every_address_of_a_name_must_be_allowed(connects, monkeypatch):
    """A name answering a public and a private address is refused: the connection could use either."""

    def getaddrinfo(host, port, *args, **kwargs):
        assert host == "mixed.example"
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.215.14", port)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.9", port)),
        ]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    with pytest.raises(BlockedAddressError, match=re.escape("mixed.example resolves to 10.0.0.9, a private address")):
        session().get("http://mixed.example/")
    assert connects == []


@pytest.mark.parametrize(
    "address", ["8.8.8.8", "93.184.215.14", "2606:4700:4700::1111", "2002:808:808::1", "64:ff9b::808:808"]
)
def test_public_addresses_pass(address):
    assert address_problem(ipaddress.ip_address(address)) is None


def test_a_proxy_is_never_used(connects):
    with pytest.raises(BlockedAddressError, match="never sent through a proxy"):
        session("127.0.0.0/8").get("http://93.184.215.14/", proxies={"http": "http://127.0.0.1:3128"})
    assert connects == []


# ----- the allow-list ------------------------------------------------------------------------------------------


def test_an_allowed_network_is_reached(server):
    server.expect_request("/ok").respond_with_json({"ok": True})
    assert session("127.0.0.0/8").get(server.url_for("/ok")).json() == {"ok": True}
    assert session("127.0.0.1").get(server.url_for("/ok")).json() == {"ok": True}  # a lone address: a /32
    with pytest.raises(BlockedAddressError):
        session("10.0.0.0/8", "::1").get(server.url_for("/ok"))  # other networks do not admit it
    assert len(server.log) == 2


def test_an_allowed_host_name_is_reached_with_its_own_host_header(server, resolver):
    resolver.answers["chatwoot.internal"] = ["127.0.0.1"]
    resolver.answers["other.internal"] = ["127.0.0.1"]
    server.expect_request("/api").respond_with_json({"ok": True})
    url = f"http://chatwoot.internal:{server.port}/api"

    assert session("chatwoot.internal").get(url).json() == {"ok": True}
    request, _ = server.log[-1]
    assert request.headers["Host"] == f"chatwoot.internal:{server.port}"  # the name, not the address

    with pytest.raises(BlockedAddressError, match=re.escape("OUTBOUND_ALLOW=other.internal")):
        session("chatwoot.internal").get(f"http://other.internal:{server.port}/api")
    assert len(server.log) == 1


def test_vet_host_returns_the_vetted_addresses_and_honours_the_allow_list(resolver):
    assert vet_host("127.0.0.1", 5432, HttpPolicy(outbound_allow=("127.0.0.0/8",))) == ["127.0.0.1"]
    assert vet_host("::ffff:127.0.0.1", 80, HttpPolicy(outbound_allow=("127.0.0.0/8",))) == ["::ffff:127.0.0.1"]
    resolver.answers["db.internal"] = ["10.20.0.7"]
    assert vet_host("db.internal", 5432, HttpPolicy(outbound_allow=("10.20.0.0/16",))) == ["10.20.0.7"]
    assert vet_host("db.internal", 5432, HttpPolicy(outbound_allow=("DB.Internal.",))) == ["10.20.0.7"]
    with pytest.raises(BlockedAddressError, match=re.escape("db.internal resolves to 10.20.0.7, a private address")):
        vet_host("db.internal", 5432, HttpPolicy())
    with pytest.raises(BlockedAddressError, match="loopback"):
        vet_host("127.0.0.1", 5432)  # no policy: the default one, which admits nothing internal


@pytest.mark.parametrize(
    ("entries", "expected"),
    [
        (
            ["chatwoot.internal", " 10.20.0.0/16 ", "127.0.0.0/8", ""],
            ("chatwoot.internal", "10.20.0.0/16", "127.0.0.0/8"),
        ),
        (["10.20.1.2/16", "::1", "[fd00::]/8"], ("10.20.0.0/16", "::1/128", "fd00::/8")),
        (["Chatwoot.Internal.", "chatwoot.internal"], ("chatwoot.internal",)),
    ],
)
def test_allow_list_entries_are_normalised(entries, expected):
    assert parse_allow_list(entries) == expected


@pytest.mark.parametrize(
    "entry", ["127.1", "2130706433", "0x7f.1", "10.0.0.0/33", "not a host", "http://x.test", "a..b"]
)
def test_allow_list_rejects_what_is_neither_a_name_nor_a_network(entry):
    with pytest.raises(ValueError, match=re.escape(repr(entry))):
        parse_allow_list([entry])


# ----- redirects: every hop is vetted ----------------------------------------------------------------------------


@pytest.fixture
def second_server():
    """A server on 127.0.0.2 (Linux routes all of 127.0.0.0/8 to loopback)."""
    running = loopback_server("127.0.0.2")
    try:
        yield running
    finally:
        running.clear()
        running.stop()


def test_a_redirect_to_a_refused_address_is_refused_at_the_hop(server, second_server):
    second_server.expect_request("/inside").respond_with_data("internal secrets")
    target = second_server.url_for("/inside")
    server.expect_request("/start").respond_with_data("", status=302, headers={"Location": target})

    # Only 127.0.0.1 is allowed: the first hop is reached, the redirect to 127.0.0.2 is refused.
    with pytest.raises(BlockedAddressError, match=r"127\.0\.0\.2 is a loopback address") as caught:
        session("127.0.0.1/32").get(server.url_for("/start"))
    assert "OUTBOUND_ALLOW=127.0.0.2" in str(caught.value)
    assert len(server.log) == 1
    assert second_server.log == []

    # The same redirect is followed when both are allowed: the refusal above was the guard's.
    assert session("127.0.0.0/8").get(server.url_for("/start")).text == "internal secrets"


def test_a_redirect_to_a_numeric_trick_is_refused(server, second_server):
    trick = f"http://0x7f.2:{second_server.port}/inside"  # 127.0.0.2
    server.expect_request("/start").respond_with_data("", status=301, headers={"Location": trick})
    with pytest.raises(BlockedAddressError, match=r"0x7f\.2 stands for 127\.0\.0\.2, a loopback address"):
        session("127.0.0.1/32").get(server.url_for("/start"))
    assert second_server.log == []


# ----- DNS rebinding: the address checked is the address connected to ---------------------------------------------


def test_dns_rebinding_cannot_swap_in_loopback_between_check_and_connect(connects, resolver):
    """The resolver answers an allowed address first and 127.0.0.1 afterwards. The connection goes to the first
    answer (the recording connect stands in for it: nothing leaves the machine), and a new connection that sees
    the second answer is refused; no connection ever goes to loopback."""
    resolver.answers["rebind.example"] = ["192.0.2.1", "127.0.0.1"]
    guarded = session("192.0.2.0/24", retries=1, connect_timeout=0.5)
    started = time.monotonic()

    with pytest.raises(
        BlockedAddressError, match=re.escape("rebind.example resolves to 127.0.0.1, a loopback address")
    ):
        guarded.get("http://rebind.example:8080/")  # first attempt: 192.0.2.1 (refused); the retry re-resolves

    assert connects == [("192.0.2.1", 8080)]  # only the vetted address, and it was resolved once per connection
    assert resolver == ["rebind.example", "rebind.example"]
    with pytest.raises(BlockedAddressError):
        guarded.get("http://rebind.example:8080/")
    assert all(not ipaddress.ip_address(address).is_loopback for address, _ in connects)
    assert time.monotonic() - started < 2


def test_one_connection_resolves_its_host_exactly_once(connects, resolver):
    resolver.answers["once.example"] = ["192.0.2.1", "127.0.0.1"]
    with pytest.raises(requests.exceptions.ConnectionError) as caught:
        session("192.0.2.0/24").get("http://once.example:8080/")
    assert not isinstance(caught.value, BlockedAddressError)
    assert "Connection refused" in str(caught.value)
    assert resolver == ["once.example"] and connects == [("192.0.2.1", 8080)]


# ----- TLS keeps the host name: SNI and the certificate check use it, the socket goes to the vetted address ------


def _certificate(tmp_path, name: str):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / f"{name}.pem", tmp_path / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


@pytest.fixture
def tls_server(tmp_path):
    """An HTTPS server on 127.0.0.1 whose certificate names console.test; it records the SNI it is sent."""
    cert, key = _certificate(tmp_path, "console.test")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    sni: list[str | None] = []
    context.sni_callback = lambda _sock, name, _ctx: sni.append(name)
    running = loopback_server(ssl_context=context)
    running.sni, running.ca = sni, str(cert)
    try:
        yield running
    finally:
        running.clear()
        running.stop()


def test_https_connects_to_the_vetted_address_but_verifies_the_host_name(tls_server, resolver):
    resolver.answers["console.test"] = ["127.0.0.1"]
    resolver.answers["wrong.test"] = ["127.0.0.1"]
    tls_server.expect_request("/api").respond_with_json({"ok": True})

    answer = session("127.0.0.0/8").get(f"https://console.test:{tls_server.port}/api", verify=tls_server.ca)
    assert answer.json() == {"ok": True}
    assert tls_server.sni == ["console.test"]  # SNI carries the name, not 127.0.0.1
    assert tls_server.log[-1][0].headers["Host"] == f"console.test:{tls_server.port}"

    # The certificate is still checked against the name: another name on the same address fails.
    with pytest.raises(requests.exceptions.SSLError):
        session("127.0.0.0/8").get(f"https://wrong.test:{tls_server.port}/api", verify=tls_server.ca)


# ----- databases: the same check, and the connection goes to the vetted address -----------------------------------


@pytest.fixture
def no_database_connects(monkeypatch, connects):
    """psycopg.connect and pymysql.connect are recorded and fail; socket connects are recorded and refused."""
    calls = _Calls()
    calls.sockets = connects

    def pg_connect(**kwargs):
        calls.append(kwargs)
        raise psycopg.OperationalError("recorded by the test")

    monkeypatch.setattr(psycopg, "connect", pg_connect)
    real_mysql = pymysql.connect

    def my_connect(**kwargs):
        calls.append(kwargs)
        return real_mysql(**kwargs)  # defer_connect: nothing connects until the socket is handed over

    monkeypatch.setattr(pymysql, "connect", my_connect)
    return calls


class _Calls(list):
    """The keyword arguments each client's connect was called with; .sockets: the socket connects."""

    sockets: list[tuple]


def db_config(host: str) -> dict:
    return {"host": host, "port": 5432, "database": "app", "user": "reader", "password": "Db-secret-123"}


def db_context(*allow: str) -> TestContext:
    return TestContext(
        make_session(HttpPolicy(connect_timeout=2, read_timeout=2, outbound_allow=allow)), MemoryTokens()
    )


@pytest.mark.parametrize("test", [database.test_postgres, database.test_mysql], ids=["postgres", "mysql"])
@pytest.mark.parametrize(
    ("host", "says"),
    [
        ("10.0.0.5", "10.0.0.5 is a private address"),
        ("169.254.169.254", "169.254.169.254 is a link-local address"),
        ("127.0.0.1", "127.0.0.1 is a loopback address"),
        ("2130706433", "2130706433 stands for 127.0.0.1"),
        ("::ffff:10.0.0.5", "IPv4-mapped IPv6 address (it stands for 10.0.0.5)"),
    ],
)
def test_database_providers_refuse_internal_addresses_before_connecting(test, host, says, no_database_connects):
    result = test(db_config(host), db_context())

    assert not result.success
    assert says in result.message
    assert "was refused" in result.message and "OUTBOUND_ALLOW=" in result.message
    assert "Db-secret-123" not in result.message
    assert no_database_connects == [] and no_database_connects.sockets == []


def test_postgres_connects_to_the_vetted_address_and_keeps_the_name_for_tls(no_database_connects, resolver):
    resolver.answers["db.internal"] = ["10.20.0.7", "127.0.0.1"]
    result = database.test_postgres(db_config("db.internal") | {"sslMode": "verify-full"}, db_context("10.20.0.0/16"))

    assert not result.success  # the recorded connect failed
    (args,) = no_database_connects
    assert (args["host"], args["hostaddr"]) == ("db.internal", "10.20.0.7")  # libpq does no lookup of its own
    assert args["sslmode"] == "verify-full"
    assert resolver == ["db.internal"]


def test_mysql_connects_to_the_vetted_address_and_keeps_the_name_for_tls(no_database_connects, resolver):
    resolver.answers["db.internal"] = ["10.20.0.7", "127.0.0.1"]
    config = db_config("db.internal") | {"port": 3306}
    result = database.test_mysql(config, db_context("10.20.0.0/16"))

    assert not result.success
    assert "refused the connection" in result.message
    assert no_database_connects.sockets == [("10.20.0.7", 3306)]
    (args,) = no_database_connects
    assert args["host"] == "db.internal" and args["defer_connect"] is True  # TLS checks the name
    assert resolver == ["db.internal"]


# ----- settings and wiring ------------------------------------------------------------------------------------------


@pytest.fixture
def settings_env(tmp_path, monkeypatch):
    from core import settings as settings_module

    root = tmp_path / "project"
    root.mkdir()
    monkeypatch.setattr(settings_module, "PROJECT_ROOT", root)

    def load(**values):
        env = {"INTEGRATION_ENCRYPTION_KEY": "7a" * 32, "COOKIE_KEY": "k" * 32, **values}
        return settings_module.load_settings(env, secrets_dir=tmp_path / "secrets")

    return load


def test_outbound_allow_setting(settings_env):
    from core.settings import SettingsError

    assert settings_env().outbound_allow == ()
    loaded = settings_env(OUTBOUND_ALLOW="chatwoot.internal, 10.20.0.0/16,127.0.0.0/8")
    assert loaded.outbound_allow == ("chatwoot.internal", "10.20.0.0/16", "127.0.0.0/8")
    with pytest.raises(SettingsError, match=r"OUTBOUND_ALLOW is not usable: '127\.1' is a numeric shorthand"):
        settings_env(OUTBOUND_ALLOW="127.1")
    with pytest.raises(SettingsError, match="neither a host name nor a network"):
        settings_env(OUTBOUND_ALLOW="chatwoot.internal,http://10.0.0.1/")


def test_the_app_refuses_loopback_unless_outbound_allow_admits_it(database_url, server, ctx):
    """The default setting reaches only public addresses; the app's services get the guard through app_context."""
    ctx.engine.dispose()
    strict = app_context.build(make_settings(database_url, outbound_allow=()), migrate=False)
    try:
        admin = strict.users.create(None, "root", "Root", "root@example.com", "admin-password-1", "admin", "ENTERPRISE")
        config = {"baseUrl": server.url_for("").rstrip("/"), "accountId": "1", "apiKey": "cw-token-0123456789"}
        result = strict.integrations.test_configuration(admin.actor(), "CHATWOOT", config)
    finally:
        strict.engine.dispose()
    assert not result.success
    assert "127.0.0.1 is a loopback address" in result.message
    assert "OUTBOUND_ALLOW=127.0.0.1" in result.message
    assert server.log == []
