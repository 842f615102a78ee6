"""The MongoDB provider against mockupdb (MongoDB's wire-protocol server library) on 127.0.0.1, through
tests/fakes/mongo.py: there is no MongoDB server here. The fake verifies SCRAM-SHA-256 proofs itself, so a
right and a wrong password are told apart by the server, as MongoDB does.

No DNS question leaves the machine: SRV and TXT answers come from a patched dnspython resolver, and host
names from a patched socket.getaddrinfo (numeric hosts only go to the system).
"""

from __future__ import annotations

import json
import secrets
import socket
import subprocess
import sys
import time
from types import SimpleNamespace

import dns.resolver
import pytest
from sqlalchemy import select

from core.catalog import TestContext
from core.crypto import field_context, is_encrypted
from core.fields import MASK, normalise, validate
from core.http import HttpPolicy, make_session, observe
from core.integrations.classify import CheckClass, classify
from core.models import Integration
from core.tiers import TierLimitError
from core.tokens import MemoryTokens
from providers import CATALOG, mongodb
from tests.fakes.mongo import READ_ONLY, READ_WRITE, ROOT, FakeMongo

PASSWORD = "Mongo-pass-" + secrets.token_hex(8)  # one per run: nothing to find in a log afterwards
WRONG = "Wrong-pass-" + secrets.token_hex(8)
LOOPBACK = HttpPolicy(connect_timeout=2, read_timeout=2, outbound_allow=("127.0.0.0/8",))
PUBLIC_ONLY = HttpPolicy(connect_timeout=2, read_timeout=2)
WRITES = {"insert", "update", "delete", "create", "drop", "findandmodify", "createuser", "dropdatabase"}
REAL_GETADDRINFO = socket.getaddrinfo

pytestmark = pytest.mark.usefixtures("fast_bcrypt")


@pytest.fixture
def fake():
    made: list[FakeMongo] = []

    def make(**options) -> FakeMongo:
        made.append(FakeMongo(**options))
        return made[-1]

    yield make
    for server in made:
        server.close()


@pytest.fixture
def names(monkeypatch):
    """names["db1.cluster0.example.test"] = ["127.0.0.1", "later", ...]: successive answers (the last repeats).

    Any other name fails the test; numeric hosts go to the system (AI_NUMERICHOST), so no DNS is asked."""
    answers: dict[str, list[str]] = {}

    def getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):
        if host in answers:
            queue = answers[host]
            address = queue.pop(0) if len(queue) > 1 else queue[0]
            return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, port))]
        if flags & socket.AI_NUMERICHOST:
            return REAL_GETADDRINFO(host, port, family, type, proto, flags)
        try:
            return REAL_GETADDRINFO(host, port, family, type, proto, flags | socket.AI_NUMERICHOST)
        except socket.gaierror:
            pytest.fail(f"a DNS question would have been asked for {host!r}", pytrace=False)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return answers


@pytest.fixture
def dns_records(monkeypatch):
    """dns_records[(name, "SRV")] = [(target, port)], [(name, "TXT")] = ["authSource=admin"]: what dnspython answers.

    A name without an entry is NXDOMAIN; every question is recorded in dns_records.asked."""
    records: dict[tuple[str, str], list] = {}
    asked: list[tuple[str, str, float]] = []

    def resolve(self, qname, rdtype="A", *args, lifetime=None, **kwargs):
        asked.append((str(qname), str(rdtype), lifetime))
        key = (str(qname), str(rdtype))
        if key not in records:
            raise dns.resolver.NXDOMAIN()
        if rdtype == "SRV":
            return [SimpleNamespace(target=f"{t}.", port=p, priority=0, weight=0) for t, p in records[key]]
        return [SimpleNamespace(strings=[text.encode()]) for text in records[key]]

    monkeypatch.setattr(dns.resolver.Resolver, "resolve", resolve)
    store = SimpleNamespace(records=records, asked=asked)
    return store


def context(policy: HttpPolicy = LOOPBACK) -> TestContext:
    return TestContext(make_session(policy), MemoryTokens())


def host_config(server: FakeMongo, **changes) -> dict:
    config = {
        "connectWith": "HOST",
        "host": "127.0.0.1",
        "port": server.port,
        "user": "reporting",
        "password": PASSWORD,
        "authSource": "admin",
        "tls": False,
    }
    return config | changes


def uri_config(uri: str) -> dict:
    return {"connectWith": "CONNECTION_STRING", "connectionString": uri}


def run_direct(config: dict, policy: HttpPolicy = LOOPBACK):
    """(result, class) of the provider's test, classified from what it noted, as the check service does."""
    with observe() as seen:
        result = mongodb.test_mongodb(config, context(policy))
    return result, classify(result, seen)


def assert_clean(result, *secret_values: str) -> None:
    text = json.dumps(result.as_dict(), default=str)
    for value in (PASSWORD, WRONG, *secret_values):
        assert value not in text


@pytest.fixture
def run(pro, unsaved_test):
    """Through the integration service (the suite's settings admit 127.0.0.0/8): no secret in result or audit."""
    return lambda config, *more: unsaved_test(pro, "MONGODB", config, (PASSWORD, WRONG, *more))


# ----- connecting ---------------------------------------------------------------------------------------


def test_a_read_only_user_connects_and_is_reported_read_only(run, fake):
    server = fake(users={"reporting": (PASSWORD, READ_ONLY)})
    result = run(host_config(server))

    assert result.success, result.message
    details = result.details
    assert (details["engine"], details["serverVersion"], details["user"]) == ("MongoDB", "7.0.14", "reporting")
    assert details["databases"] == 4
    assert details["canWrite"] is False
    assert details["access"].startswith("read only")
    assert details["encrypted"] is False
    assert result.message.startswith(f"Connected to MongoDB 7.0.14 at 127.0.0.1:{server.port}, as reporting (read only")
    assert server.passwords_checked == ["reporting"]  # the proof was verified by the server
    asked = {name.lower() for name in server.commands}
    assert {"hello", "ping", "buildinfo", "listdatabases", "connectionstatus"} <= asked
    assert not asked & WRITES  # nothing written


@pytest.mark.parametrize(
    ("privileges", "access"),
    [(READ_WRITE, "can write to database sales"), (ROOT, "can write to every database")],
)
def test_a_user_with_insert_or_update_can_write(run, fake, privileges, access):
    server = fake(users={"reporting": (PASSWORD, privileges)})
    result = run(host_config(server))

    assert result.success, result.message
    assert (result.details["canWrite"], result.details["access"]) == (True, access)
    assert "can write" in result.message
    assert not {name.lower() for name in server.commands} & WRITES


def test_without_a_user_on_a_server_without_access_control_anyone_can_write(fake):
    server = fake()
    result, classified = run_direct(host_config(server, user="", password=""))

    assert result.success, result.message
    assert result.details["canWrite"] is True
    assert "no access control" in result.details["access"]
    assert "without a user" in result.message
    assert classified.check_class is CheckClass.OK


def test_a_wrong_password_is_refused_credentials_and_needs_reconnect(fake):
    server = fake(users={"reporting": (PASSWORD, READ_ONLY)})
    result, classified = run_direct(host_config(server, password=WRONG))

    assert not result.success
    assert result.message == (
        f"MongoDB at 127.0.0.1:{server.port} refused user reporting: authentication failed. Check the user name, "
        "the password and the auth source (admin)."
    )
    assert (classified.check_class, classified.code, classified.needs_reconnect) == (CheckClass.AUTH, "18", True)
    assert server.passwords_checked == ["reporting"]
    assert_clean(result)


def test_a_refused_list_databases_is_a_permission_result(fake):
    server = fake(users={"reporting": (PASSWORD, READ_ONLY)}, list_databases=False)
    result, classified = run_direct(host_config(server))

    assert not result.success
    assert result.message.startswith(f"Connected to MongoDB 7.0.14 at 127.0.0.1:{server.port}, but user reporting")
    assert "may not list its databases (not authorized, code 13)" in result.message
    assert result.details["serverVersion"] == "7.0.14"  # the connection itself worked
    assert (classified.check_class, classified.code, classified.needs_reconnect) == (
        CheckClass.PERMISSION,
        "13",
        False,
    )


def test_a_replica_set_member_reports_its_set_and_its_announced_hosts_are_never_followed(fake):
    """The fake announces 169.254.169.254:27017 as a member: had pymongo connected there, the loopback guard
    (tests/loopback.py) would fail this test."""
    server = fake(users={"reporting": (PASSWORD, READ_ONLY)}, set_name="rs0")
    result, _ = run_direct(uri_config(f"mongodb://reporting:{PASSWORD}@{server.seed}/?replicaSet=rs0"))

    assert result.success, result.message
    assert (result.details["replicaSet"], result.details["role"]) == ("rs0", "primary")
    assert ", replica set rs0 (primary)" in result.message
    assert_clean(result)


def test_a_seed_list_with_a_member_the_guard_refuses_connects_to_none(fake):
    server = fake(users={"reporting": (PASSWORD, READ_ONLY)})
    uri = f"mongodb://reporting:{PASSWORD}@{server.seed},169.254.169.254:27017/?replicaSet=rs0"
    result, classified = run_direct(uri_config(uri))

    assert not result.success
    assert "169.254.169.254 is a link-local address" in result.message
    assert "OUTBOUND_ALLOW=169.254.169.254" in result.message
    assert server.commands == []  # refused before anything connected, even to the allowed seed
    assert classified.check_class is CheckClass.CONFIGURATION
    assert_clean(result, uri)


def test_the_next_seed_is_tried_when_the_first_does_not_answer(fake, closed_port):
    server = fake(users={"reporting": (PASSWORD, READ_ONLY)})
    uri = f"mongodb://reporting:{PASSWORD}@127.0.0.1:{closed_port},{server.seed}/"
    result, _ = run_direct(uri_config(uri))

    assert result.success, result.message
    assert result.details["host"] == server.seed


def test_pymongo_connects_to_the_vetted_address_even_when_dns_changes_afterwards(fake, names):
    """DNS rebinding: the first answer (vetted) is 127.0.0.1, every later one 169.254.169.254. pymongo's own
    lookup is pinned to the vetted address, so it reaches the fake (and the host name stays the one used)."""
    server = fake(users={"reporting": (PASSWORD, READ_ONLY)})
    names["mongo.example.test"] = ["127.0.0.1", "169.254.169.254"]
    result, _ = run_direct(host_config(server, host="mongo.example.test"))

    assert result.success, result.message
    assert result.details["host"] == f"mongo.example.test:{server.port}"
    assert names["mongo.example.test"] == ["169.254.169.254"]  # the vetting used the first answer


# ----- mongodb+srv -------------------------------------------------------------------------------------


def srv(dns_records, names, server: FakeMongo, address: str = "127.0.0.1", target: str = "db1.cluster0.example.test"):
    dns_records.records[("_mongodb._tcp.cluster0.example.test", "SRV")] = [(target, server.port)]
    dns_records.records[("cluster0.example.test", "TXT")] = ["authSource=admin&replicaSet=rs0"]
    names[target] = [address]
    return uri_config(f"mongodb+srv://reporting:{PASSWORD}@cluster0.example.test/?tls=false")


def test_srv_to_loopback_is_refused_unless_outbound_allow_admits_it(fake, dns_records, names):
    server = fake(users={"reporting": (PASSWORD, READ_ONLY)}, set_name="rs0")
    config = srv(dns_records, names, server)

    refused, classified = run_direct(config, PUBLIC_ONLY)
    assert not refused.success
    assert "db1.cluster0.example.test resolves to 127.0.0.1, a loopback address" in refused.message
    assert "OUTBOUND_ALLOW=db1.cluster0.example.test" in refused.message
    assert server.commands == []
    assert classified.check_class is CheckClass.CONFIGURATION

    allowed, _ = run_direct(config, LOOPBACK)
    assert allowed.success, allowed.message
    assert allowed.details["host"] == f"db1.cluster0.example.test:{server.port}"
    assert allowed.details["replicaSet"] == "rs0"
    assert allowed.details["hosts"] == "mongodb+srv://cluster0.example.test"
    # Each DNS question had a lifetime within the connect timeout.
    assert [(name, kind) for name, kind, _ in dns_records.asked][:2] == [
        ("_mongodb._tcp.cluster0.example.test", "SRV"),
        ("cluster0.example.test", "TXT"),
    ]
    assert all(0 < lifetime <= 2 for _, _, lifetime in dns_records.asked)
    assert_clean(allowed)


def test_srv_to_the_metadata_address_is_refused_even_with_loopback_allowed(fake, dns_records, names):
    server = fake(users={"reporting": (PASSWORD, READ_ONLY)})
    result, _ = run_direct(srv(dns_records, names, server, address="169.254.169.254"), LOOPBACK)

    assert not result.success
    assert "resolves to 169.254.169.254, a link-local address" in result.message
    assert server.commands == []


def test_an_srv_target_outside_the_hosts_domain_is_refused(fake, dns_records, names):
    server = fake()
    result, _ = run_direct(srv(dns_records, names, server, target="evil.other.test"), LOOPBACK)

    assert not result.success
    assert "names evil.other.test, which is not in example.test" in result.message
    assert server.commands == []


def test_a_missing_srv_record_says_so(dns_records):
    result, classified = run_direct(uri_config("mongodb+srv://nowhere.example.test/"))

    assert not result.success
    assert result.message == (
        "DNS has no SRV record _mongodb._tcp.nowhere.example.test: check the host name of the mongodb+srv:// string."
    )
    assert classified.check_class is CheckClass.NETWORK


# ----- failures, timeouts, TLS, secrets --------------------------------------------------------------------


def test_a_password_without_a_user_is_refused_before_connecting(fake):
    server = fake()
    result, classified = run_direct(host_config(server, user=""))

    assert not result.success
    assert result.message == mongodb._NO_USER
    assert server.commands == []
    assert result.details["field_errors"] == {"user": mongodb._NO_USER}
    assert classified.check_class is CheckClass.CONFIGURATION
    assert_clean(result)


def test_a_refused_connection(closed_port):
    result, classified = run_direct({"connectWith": "HOST", "host": "127.0.0.1", "port": closed_port})

    assert not result.success
    assert f"MongoDB at 127.0.0.1:{closed_port} refused the connection" in result.message
    assert classified.check_class is CheckClass.NETWORK


def test_a_server_that_never_answers_times_out_within_the_deadline(fake):
    server = fake(silent=True)
    started = time.monotonic()
    result, classified = run_direct(host_config(server))
    elapsed = time.monotonic() - started

    assert not result.success
    assert f"MongoDB at 127.0.0.1:{server.port} did not answer within 2 seconds (timeout)" in result.message
    assert classified.check_class is CheckClass.TIMEOUT
    assert elapsed < LOOPBACK.request_deadline  # 2 + 2 x 2 = 6 s: one total deadline
    assert_clean(result)


# mockupdb's accept thread ends with the handshake the client refused (unknown CA): expected, not a fault.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_tls_against_an_untrusted_certificate_is_a_tls_failure(fake):
    server = fake(ssl=True)
    result, classified = run_direct(host_config(server, user="", password="", tls=True))

    assert not result.success
    assert "The secure connection (TLS) to MongoDB" in result.message
    assert classified.check_class is CheckClass.TLS


def test_the_password_is_redacted_from_every_message(fake, closed_port):
    server = fake(users={"reporting": (PASSWORD, READ_ONLY)})
    uri = f"mongodb://reporting:{PASSWORD}@{server.seed}/?authSource=admin"
    configs = [
        uri_config(uri),  # success
        uri_config(uri.replace(PASSWORD, WRONG)),  # refused credentials
        uri_config(f"mongodb://reporting:{PASSWORD}@127.0.0.1:{closed_port}/"),  # refused connection
        uri_config(f"mongodb://reporting:{PASSWORD}@10.0.0.1/"),  # the guard
        uri_config(f"mongodb://reporting:{PASSWORD}@127.0.0.1/?proxyHost=x"),  # a stored string with a bad option
    ]
    for config in configs:
        result, _ = run_direct(config)
        assert_clean(result, config["connectionString"])


def test_secrets_stay_out_of_the_service_result_and_the_audit(run, fake):
    server = fake(users={"reporting": (PASSWORD, READ_ONLY)})
    uri = f"mongodb://reporting:{PASSWORD}@{server.seed}/"
    assert run(uri_config(uri), uri).success
    assert not run(uri_config(uri.replace(PASSWORD, WRONG)), uri.replace(PASSWORD, WRONG)).success


# ----- the form, saving, the tier ------------------------------------------------------------------------


def problems(config: dict) -> dict:
    provider = CATALOG.get("MONGODB")
    return validate(provider.fields, config) or (provider.check(config) if provider.check else {})


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("postgres://h/", "Start the connection string with mongodb:// or mongodb+srv://."),
        ("mongodb+srv://cluster0.example.net:27017/", "names one host and no port"),
        ("mongodb+srv://a.example.net,b.example.net/", "names one host and no port"),
        ("mongodb://u:p@ss@h/", "Percent-encode @, : and /"),
        ("mongodb://h/?tlsCertificateKeyFile=/etc/ssl/key.pem", "option tlsCertificateKeyFile is not used"),
        ("mongodb://h/?proxyHost=10.0.0.1", "option proxyHost is not used"),
        ("mongodb://h/?authMechanism=MONGODB-AWS", "MONGODB-AWS is not one the console uses"),
        ("mongodb://h:99999/", "from 1 to 65535"),
        ("mongodb:///", "Name at least one host"),
        ("mongodb://h/?tls=maybe", "tls must be true or false"),
    ],
)
def test_connection_strings_are_checked_with_sentences(uri, expected):
    found = problems(uri_config(uri))
    assert set(found) == {"connectionString"}
    assert expected in found["connectionString"]


def test_valid_configurations_pass():
    assert problems(uri_config("mongodb+srv://u:p%40ss@cluster0.example.net/sales?retryWrites=true&w=majority")) == {}
    assert problems(uri_config("mongodb://h1:27017,h2:27018,[::1]:27019/?replicaSet=rs0&tls=true")) == {}
    assert problems({"connectWith": "HOST", "host": "mongo.example.com", "port": 27017}) == {}
    assert problems({"connectWith": "HOST", "host": "h", "port": 0}) == {"port": "Enter a port number from 1 to 65535."}
    assert problems(uri_config("")) == {"connectionString": "Connection string is required."}


def test_the_chosen_way_to_connect_wins_and_the_other_is_not_kept():
    fields = CATALOG.get("MONGODB").fields
    both = {"host": "h", "port": 27017, "user": "u", "password": PASSWORD, "connectionString": "mongodb://x/"}
    assert normalise(fields, both | {"connectWith": "CONNECTION_STRING"}) == uri_config("mongodb://x/")
    kept = normalise(fields, both | {"connectWith": "HOST"})
    assert "connectionString" not in kept
    assert kept["host"] == "h" and kept["authSource"] == "admin" and kept["tls"] is False


def form_script() -> None:
    import streamlit as st

    from providers import CATALOG
    from ui.forms import controlling_fields, render_fields

    provider = CATALOG.get("MONGODB")
    controlling = controlling_fields(provider.fields)
    controls = render_fields([f for f in provider.fields if f.name in controlling], {}, "t", {}, {})
    rest = render_fields([f for f in provider.fields if f.name not in controlling], {}, "t", {}, controls)
    st.session_state["config"] = {**rest, **controls}


def widget(at, name: str):
    for kind in ("text_input", "number_input", "selectbox", "checkbox"):
        for element in getattr(at, kind):
            if element.key == f"t:{name}":
                return element
    raise AssertionError(f"no widget for {name}")


def labels(at) -> set[str]:
    kinds = ("text_input", "number_input", "selectbox", "checkbox")
    return {element.label.rstrip(" *") for kind in kinds for element in getattr(at, kind)}


def stored(ctx, integration_id: int) -> dict:
    with ctx.engine.connect() as conn:
        raw = conn.execute(select(Integration.configuration).where(Integration.id == integration_id)).scalar_one()
    return json.loads(raw) if isinstance(raw, str) else raw


def test_the_form_saves_either_way_with_the_secret_encrypted_and_masked(ctx, pro):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_function(form_script, default_timeout=10)
    at.run()
    assert not at.exception, at.exception
    assert labels(at) == {"Connect with", "Host", "Port", "User", "Password", "Auth source", "Use TLS"}
    assert widget(at, "port").value == 27017
    widget(at, "host").input("mongo.example.com")
    widget(at, "user").input("reporting")
    widget(at, "password").input(PASSWORD)
    at.run()
    view = ctx.integrations.create(pro, "Sales Mongo", "MONGODB", at.session_state["config"])
    assert view.type == "DATABASE"
    assert view.configuration["password"] == MASK
    raw = stored(ctx, view.id)
    assert is_encrypted(raw["password"]) and PASSWORD not in json.dumps(raw)
    assert ctx.cipher.decrypt(raw["password"], field_context(view.id, "password")) == PASSWORD

    widget(at, "connectWith").set_value("CONNECTION_STRING")
    at.run()
    assert labels(at) == {"Connect with", "Connection string"}
    uri = f"mongodb+srv://reporting:{PASSWORD}@cluster0.example.net/"
    widget(at, "connectionString").input(uri)
    at.run()
    view = ctx.integrations.create(pro, "Atlas", "MONGODB", at.session_state["config"])
    assert view.configuration == {"connectWith": "CONNECTION_STRING", "connectionString": MASK}
    raw = stored(ctx, view.id)
    assert is_encrypted(raw["connectionString"]) and PASSWORD not in json.dumps(raw)
    assert ctx.cipher.decrypt(raw["connectionString"], field_context(view.id, "connectionString")) == uri


def test_a_free_user_cannot_add_it(ctx, member):
    with pytest.raises(TierLimitError) as raised:
        ctx.integrations.create(member, "Refused", "MONGODB", {"connectWith": "HOST", "host": "h", "port": 27017})
    assert "needs the Pro Plus tier or higher; yours is Free" in str(raised.value)
    assert ctx.integrations.list_integrations(member) == []


def test_pymongo_and_dnspython_are_imported_only_when_a_test_runs():
    code = "import sys, providers; print(sorted(m for m in ('pymongo', 'dns', 'bson') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"
