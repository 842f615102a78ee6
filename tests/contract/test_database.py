"""The PostgreSQL and MySQL / MariaDB providers, through the integration service, against the real servers on
127.0.0.1 (5432 and 3306) when they answer, and against tiny local fakes for what those servers cannot show
(a silent server, PostgreSQL's password failure when it trusts 127.0.0.1, a server that demands SSL).

Throwaway roles and users with passwords are created per test and dropped afterwards.
"""

from __future__ import annotations

import secrets
import socket
import time

import psycopg
import pymysql
import pytest
from psycopg import sql

from core.catalog import TestContext
from core.http import HttpPolicy, make_session
from core.tokens import MemoryTokens
from providers import database
from providers.database import write_scope
from tests.fakes.postgres import FakePostgres

PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres", "dbname": "postgres"}
MY = {"host": "127.0.0.1", "port": 3306, "user": "root", "password": "", "database": "test"}
PASSWORD = "Db-pass-" + secrets.token_hex(8)  # one per run: nothing to find in a log afterwards
WRONG = "Wrong-pass-" + secrets.token_hex(8)


pytestmark = pytest.mark.usefixtures("fast_bcrypt")  # the lowest bcrypt cost (tests/conftest.py)


@pytest.fixture
def run(pro, unsaved_test):
    """run(provider key, config, *secrets): test through the service; no secret may reach the result or audit."""
    return lambda key, config, *more_secrets: unsaved_test(pro, key, config, (PASSWORD, WRONG, *more_secrets))


def unique(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(4)}"


# ----- PostgreSQL -------------------------------------------------------------------------------------


@pytest.fixture
def pg_admin():
    try:
        conn = psycopg.connect(**PG, connect_timeout=3, autocommit=True)
    except psycopg.Error as exc:
        pytest.skip(f"PostgreSQL does not answer on 127.0.0.1:5432 as postgres ({str(exc).splitlines()[0]})")
    with conn:
        yield conn


@pytest.fixture
def pg_role(pg_admin):
    """pg_role(create_in_public=False) -> a new login role with PASSWORD, dropped (with its grants) afterwards."""
    made = []

    def make(create_in_public: bool = False) -> str:
        name = unique("ic_test_role")
        pg_admin.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(name), PASSWORD))
        made.append(name)
        if create_in_public:
            pg_admin.execute(sql.SQL("GRANT CREATE ON SCHEMA public TO {}").format(sql.Identifier(name)))
        return name

    yield make
    for name in made:
        pg_admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (name,))
        pg_admin.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(name)))
        pg_admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))


def pg_config(**changes) -> dict:
    config = {
        "host": "127.0.0.1",
        "port": 5432,
        "database": "postgres",
        "user": "postgres",
        "password": PASSWORD,
        "sslMode": "prefer",
    }
    return config | changes


def test_postgres_superuser_connects_and_can_write(run, pg_admin):
    version = pg_admin.execute("SELECT current_setting('server_version')").fetchone()[0]
    result = run("POSTGRESQL", pg_config())

    assert result.success, result.message
    details = result.details
    assert details["engine"] == "PostgreSQL"
    assert details["serverVersion"] == version
    assert (details["database"], details["user"]) == ("postgres", "postgres")
    assert details["canWrite"] is True
    assert details["access"].startswith("superuser")
    assert details["encrypted"] is False  # the local server has ssl off; prefer falls back
    assert isinstance(details["latencyMs"], int)
    assert result.message.startswith(f"Connected to PostgreSQL {version} at 127.0.0.1:5432, database postgres")


def test_postgres_read_only_role_is_reported_read_only(run, pg_role):
    role = pg_role()
    result = run("POSTGRESQL", pg_config(user=role))

    assert result.success, result.message
    assert result.details["user"] == role
    assert result.details["canWrite"] is False
    assert result.details["access"].startswith("read-only: no CREATE in schema public")
    assert "read-only" in result.message


def test_postgres_role_that_may_create_tables_can_write(run, pg_role):
    role = pg_role(create_in_public=True)
    result = run("POSTGRESQL", pg_config(user=role))

    assert result.success, result.message
    assert result.details["canWrite"] is True
    assert result.details["access"] == "can create tables in schema public"


def test_postgres_role_with_a_table_grant_can_write(run, pg_role, pg_admin):
    role = pg_role()
    table = unique("ic_test_table")
    pg_admin.execute(sql.SQL("CREATE TABLE {} (id int)").format(sql.Identifier(table)))
    try:
        pg_admin.execute(sql.SQL("GRANT INSERT ON {} TO {}").format(sql.Identifier(table), sql.Identifier(role)))
        result = run("POSTGRESQL", pg_config(user=role))
    finally:
        pg_admin.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(table)))
    assert result.success, result.message
    assert result.details["canWrite"] is True
    assert result.details["access"] == "can insert, update or delete rows in at least one table"


def test_postgres_wrong_password_on_the_real_server(run, pg_role):
    role = pg_role()
    result = run("POSTGRESQL", pg_config(user=role, password=WRONG))
    if result.success:
        pytest.skip(
            "PostgreSQL on 127.0.0.1 trusts local connections (pg_hba.conf 'trust'), so it never checks a "
            "password; test_postgres_wrong_password_against_a_server_that_checks_it covers the failure"
        )
    assert "authentication failed" in result.message


def test_postgres_database_that_does_not_exist(run, pg_admin):
    name = unique("ic_no_such_db")
    result = run("POSTGRESQL", pg_config(database=name))

    assert not result.success
    assert result.message == (
        f"PostgreSQL at 127.0.0.1:5432 has no database called {name}. Check its name (names are case-sensitive)."
    )


def test_postgres_ssl_required_by_the_form_but_not_offered_by_the_server(run, pg_admin):
    if pg_admin.execute("SHOW ssl").fetchone()[0] == "on":
        pytest.skip("PostgreSQL on 127.0.0.1 has SSL on, so it cannot show the refusal")
    for mode in ("require", "verify-full"):
        result = run("POSTGRESQL", pg_config(sslMode=mode))
        assert not result.success
        assert "does not offer encrypted connections (SSL)" in result.message
        assert f"the SSL mode {mode} needs one" in result.message


# ----- a fake PostgreSQL for what the local server cannot show ---------------------------------------------


@pytest.fixture
def fake_postgres():
    made = []

    def make(behaviour: str) -> FakePostgres:
        made.append(FakePostgres(behaviour))
        return made[-1]

    yield make
    for fake in made:
        fake.close()


def test_postgres_wrong_password_against_a_server_that_checks_it(run, fake_postgres):
    fake = fake_postgres("reject_password")
    result = run("POSTGRESQL", pg_config(port=fake.port, user="reporting", password=WRONG, database="sales"))

    assert not result.success
    assert result.message == (
        f"PostgreSQL at 127.0.0.1:{fake.port} refused user reporting: authentication failed. "
        "Check the user name and password."
    )
    assert fake.passwords == [WRONG]  # it was asked for, and sent; it is in no result or audit event (run)
    startup = fake.startups[0]
    assert (startup["user"], startup["database"]) == ("reporting", "sales")
    assert startup["application_name"] == database.APPLICATION_NAME


def test_postgres_server_that_requires_ssl(run, fake_postgres):
    fake = fake_postgres("ssl_required")
    result = run("POSTGRESQL", pg_config(port=fake.port, sslMode="disable"))

    assert not result.success
    assert "requires an encrypted connection (SSL)" in result.message
    assert "require or verify-full" in result.message


# ----- MySQL / MariaDB ----------------------------------------------------------------------------------


@pytest.fixture
def mysql_admin():
    try:
        conn = pymysql.connect(**MY, connect_timeout=3, autocommit=True)
    except pymysql.MySQLError as exc:
        pytest.skip(f"MySQL/MariaDB does not answer on 127.0.0.1:3306 as root without a password ({exc})")
    try:
        yield conn
    finally:
        conn.close()


@pytest.fixture
def mysql_user(mysql_admin):
    """mysql_user(grants="SELECT") -> a new 'user'@'127.0.0.1' with PASSWORD and those grants on test.*."""
    made = []

    def make(grants: str = "SELECT") -> str:
        name = unique("ic_test_user")
        with mysql_admin.cursor() as cursor:
            cursor.execute(f"CREATE USER '{name}'@'127.0.0.1' IDENTIFIED BY %s", (PASSWORD,))
            made.append(name)
            cursor.execute(f"GRANT {grants} ON `test`.* TO '{name}'@'127.0.0.1'")
        return name

    yield make
    with mysql_admin.cursor() as cursor:
        for name in made:
            cursor.execute(f"DROP USER IF EXISTS '{name}'@'127.0.0.1'")


def my_config(**changes) -> dict:
    config = {
        "host": "127.0.0.1",
        "port": 3306,
        "database": "test",
        "user": "root",
        "password": "",
        "sslMode": "prefer",
    }
    return config | changes


def test_mysql_root_connects_and_can_write(run, mysql_admin):
    with mysql_admin.cursor() as cursor:
        cursor.execute("SELECT VERSION()")
        version = cursor.fetchone()[0]
    result = run("MYSQL", my_config())

    assert result.success, result.message
    details = result.details
    assert details["engine"] == ("MariaDB" if "MariaDB" in version else "MySQL")
    assert details["serverVersion"] == version
    assert (details["database"], details["user"]) == ("test", "root")
    assert details["canWrite"] is True
    assert details["access"] == "can write to every database"
    assert isinstance(details["latencyMs"], int)
    assert result.message.startswith(f"Connected to {details['engine']} {version} at 127.0.0.1:3306, database test")


def test_mysql_read_only_user_is_reported_read_only(run, mysql_user):
    user = mysql_user("SELECT")
    result = run("MYSQL", my_config(user=user, password=PASSWORD))

    assert result.success, result.message
    assert result.details["user"] == user
    assert result.details["canWrite"] is False
    assert result.details["access"] == "read-only: no INSERT, UPDATE, DELETE or CREATE grant on test"
    assert "IDENTIFIED" not in str(result.details)  # SHOW GRANTS' password hash is never reported


def test_mysql_user_with_insert_can_write(run, mysql_user):
    user = mysql_user("SELECT, INSERT")
    result = run("MYSQL", my_config(user=user, password=PASSWORD))

    assert result.success, result.message
    assert result.details["canWrite"] is True
    assert result.details["access"] == "can write to database test"


def test_mysql_wrong_password(run, mysql_user):
    user = mysql_user()
    result = run("MYSQL", my_config(user=user, password=WRONG))

    assert not result.success
    assert result.message == (
        f"MySQL at 127.0.0.1:3306 refused user {user}: authentication failed. Check the user name and password."
    )


def test_mysql_database_that_does_not_exist(run, mysql_admin):
    name = unique("ic_no_such_db")
    result = run("MYSQL", my_config(database=name))

    assert not result.success
    assert result.message == f"MySQL at 127.0.0.1:3306 has no database called {name}. Check its name."


def test_mysql_database_the_user_may_not_use(run, mysql_user):
    user = mysql_user()
    result = run("MYSQL", my_config(user=user, password=PASSWORD, database="mysql"))

    assert not result.success
    assert f"does not let user {user} use database mysql, or it does not exist" in result.message


def test_mysql_ssl_required_by_the_form_but_not_offered_by_the_server(run, mysql_admin):
    with mysql_admin.cursor() as cursor:
        cursor.execute("SHOW VARIABLES LIKE 'have_ssl'")
        row = cursor.fetchone()
    if row and row[1] == "YES":
        pytest.skip("MySQL/MariaDB on 127.0.0.1 has SSL on, so it cannot show the refusal")
    for mode in ("require", "verify-full"):
        result = run("MYSQL", my_config(sslMode=mode))
        assert not result.success
        assert "does not offer encrypted connections (SSL)" in result.message


# ----- both: unreachable and silent servers -------------------------------------------------------------


@pytest.fixture
def silent_port():
    """A port on 127.0.0.1 that accepts connections and then never says a word."""
    server = socket.create_server(("127.0.0.1", 0), backlog=8)
    try:
        yield server.getsockname()[1]
    finally:
        server.close()


@pytest.mark.parametrize(("key", "config"), [("POSTGRESQL", pg_config()), ("MYSQL", my_config())])
def test_refused_connection(run, closed_port, key, config):
    result = run(key, config | {"port": closed_port})

    assert not result.success
    assert f"refused the connection: nothing listens on port {closed_port} there" in result.message


@pytest.mark.parametrize(("key", "config"), [("POSTGRESQL", pg_config()), ("MYSQL", my_config())])
def test_silent_server_times_out_within_the_configured_timeouts(run, silent_port, key, config):
    started = time.monotonic()
    result = run(key, config | {"port": silent_port})
    elapsed = time.monotonic() - started

    assert not result.success
    # The suite's settings: HTTP_CONNECT_TIMEOUT=2, HTTP_READ_TIMEOUT=2.
    assert "did not answer within 2 seconds (timeout)" in result.message
    assert elapsed < 8


def test_timeouts_come_from_the_context_http_policy():
    context = TestContext(make_session(HttpPolicy(connect_timeout=3, read_timeout=7)), MemoryTokens())
    target = database._target("PostgreSQL", pg_config(), context, 5432)
    assert (target.connect_timeout, target.read_timeout) == (3, 7)
    assert database._pg_connect_args(target)["connect_timeout"] == 3
    my = database._mysql_connect_args(database._target("MySQL", my_config(), context, 3306))
    assert (my["connect_timeout"], my["read_timeout"], my["write_timeout"]) == (3, 7, 7)
    # Without an HTTP session from make_session the documented defaults apply.
    fallback = database._target("PostgreSQL", pg_config(), None, 5432)
    assert (fallback.connect_timeout, fallback.read_timeout) == (5.0, 15.0)


def test_nothing_of_the_app_servers_own_is_offered_to_a_customers_postgres():
    args = database._pg_connect_args(database._target("PostgreSQL", pg_config(password=""), None, 5432))
    assert args["password"] == ""  # given, so PGPASSWORD is not used
    assert args["passfile"].endswith(".no-pgpass")  # and no ~/.pgpass either
    assert (args["sslcertmode"], args["gssencmode"]) == ("disable", "disable")
    assert args["require_auth"] == "password,md5,scram-sha-256,none"


# ----- messages and rules without a server ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('could not translate host name "db.nope" to address: Name or service not known', "could not be found (DNS)"),
        ("connection to server failed: Network is unreachable", "is unreachable from this server"),
        ("connection to server failed: No route to host", "is unreachable from this server"),
        ('FATAL:  role "ghost" does not exist', "authentication failed"),
        ("FATAL:  no password supplied", "authentication failed"),
        ('FATAL:  no pg_hba.conf entry for host "10.0.0.9", user "u", database "d", SSL encryption', "pg_hba.conf"),
        ("SSL error: certificate verify failed", "could not be verified"),
        ('server certificate for "x" does not match host name "y"', "could not be verified"),
        ("FATAL:  sorry, too many clients already", "has no free connections"),
        ("FATAL:  the database system is starting up", "starting up or shutting down"),
        ('authentication method requirement "password" failed: server requested GSSAPI', "other than a password"),
        ("connection timeout expired", "(timeout)"),
        ("something nobody expected", "failed: something nobody expected."),
    ],
)
def test_postgres_failures_in_plain_words(text, expected):
    target = database._target("PostgreSQL", pg_config(host="db.nope"), None, 5432)
    assert expected in database._explain_postgres(psycopg.OperationalError(text), target)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((2003, "Can't connect to MySQL server on 'db.nope' ([Errno -2] Name or service not known)"), "(DNS)"),
        ((2003, "Can't connect to MySQL server on 'db.nope' (timed out)"), "(timeout)"),
        ((2013, "Lost connection to MySQL server during query (timed out)"), "(timeout)"),
        ((1130, "Host '10.0.0.2' is not allowed to connect to this MariaDB server"), "allowed hosts exclude it"),
        ((3159, "Connections using insecure transport are prohibited"), "requires an encrypted connection"),
        ((1040, "Too many connections"), "has no free connections"),
        ((2026, "SSL connection error: certificate verify failed"), "could not be verified"),
    ],
)
def test_mysql_failures_in_plain_words(args, expected):
    target = database._target("MySQL", my_config(host="db.nope"), None, 3306)
    assert expected in database._explain_mysql(pymysql.err.OperationalError(*args), target)


def test_an_unexpected_message_never_carries_the_password():
    target = database._target("PostgreSQL", pg_config(), None, 5432)
    message = database._explain_postgres(psycopg.OperationalError(f"odd failure near {PASSWORD}"), target)
    assert PASSWORD not in message and "[redacted]" in message


@pytest.mark.parametrize(
    ("grants", "expected"),
    [
        (["GRANT ALL PRIVILEGES ON *.* TO `root`@`localhost` WITH GRANT OPTION"], "every database"),
        (["GRANT USAGE ON *.* TO `u`@`%` IDENTIFIED BY PASSWORD '*ABC'", "GRANT SELECT ON `app`.* TO `u`@`%`"], None),
        (["GRANT SELECT, INSERT, UPDATE ON `app`.* TO `u`@`%`"], "database app"),
        (["GRANT INSERT ON `a_p%`.* TO `u`@`%`"], "database app"),  # a wildcard grant covering app
        (["GRANT INSERT ON `app\\_%`.* TO `u`@`%`"], None),  # app_<anything>, escaped: not app itself
        (["GRANT INSERT ON `other`.* TO `u`@`%`"], None),
        (["GRANT SELECT, UPDATE (`name`, `email`) ON `app`.`users` TO `u`@`%`"], "some tables of app"),
        (["GRANT SELECT (`a`, `b`) ON `app`.`users` TO `u`@`%`"], None),
        (["GRANT EXECUTE ON PROCEDURE `app`.`p` TO `u`@`%`"], None),
        (["GRANT `writers` TO `u`@`%`", "GRANT INSERT ON `app`.* TO `writers`"], "database app"),
        (["GRANT CREATE TEMPORARY TABLES ON `app`.* TO `u`@`%`"], None),
        (["GRANT ALL ON `app`.* TO 'u'@'%'"], "database app"),
    ],
)
def test_mysql_write_scope_from_show_grants(grants, expected):
    assert write_scope(grants, "app") == expected


@pytest.mark.parametrize(("port", "ok"), [(5432, True), ("3306", True), (0, False), (65536, False), (54.5, False)])
def test_port_must_be_a_whole_number_in_range(port, ok):
    assert (database.check({"port": port}) == {}) is ok
