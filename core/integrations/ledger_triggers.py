"""The triggers that keep the statistics ledgers (core.integrations.ledgers), for SQLite and PostgreSQL.

Created by migration 0018; dropped and created again around a bulk load (ledgers.bulk_load), which
recounts once at the end instead of appending a row per row written.
"""

from __future__ import annotations

from sqlalchemy import Connection, text

COUNT_KEY = "tier, provider, type, status, health, is_active"
FRESH_KEY = "hour, tier, provider, type, status"

# ----- SQLite: one trigger per event; NEW/OLD rows joined to their owner for the tier ---------------------

# The hour cut from the stored text ('YYYY-MM-DD HH'), not strftime over the whole value, which rounds
# to milliseconds and would put 10:59:59.9999 in hour 11.
SQLITE_HOUR = (
    "(CAST(strftime('%s', substr(coalesce({r}.last_checked_at, {r}.created_at), 1, 13) || ':00:00') AS INTEGER) / 3600)"
)


def _sqlite_count(row: str, sign: str, extra: str = "") -> str:
    return (
        f"INSERT INTO stat_integration_counts ({COUNT_KEY}, n) "
        f"SELECT u.tier, {row}.provider, {row}.type, {row}.status, {row}.health, {row}.is_active, {sign}1 "
        f"FROM users u WHERE u.id = {row}.owner_id{extra};"
    )


def _sqlite_fresh(row: str, sign: str, extra: str = "") -> str:
    return (
        f"INSERT INTO stat_integration_freshness ({FRESH_KEY}, n) "
        f"SELECT {SQLITE_HOUR.format(r=row)}, u.tier, {row}.provider, {row}.type, {row}.status, {sign}1 "
        f"FROM users u WHERE u.id = {row}.owner_id AND {row}.is_active{extra};"
    )


COUNT_CHANGED = (
    " AND (OLD.owner_id IS NOT NEW.owner_id OR OLD.provider IS NOT NEW.provider OR OLD.type IS NOT NEW.type"
    " OR OLD.status IS NOT NEW.status OR OLD.health IS NOT NEW.health OR OLD.is_active IS NOT NEW.is_active)"
)
FRESH_CHANGED = (
    " AND (OLD.owner_id IS NOT NEW.owner_id OR OLD.provider IS NOT NEW.provider OR OLD.type IS NOT NEW.type"
    " OR OLD.status IS NOT NEW.status OR OLD.is_active IS NOT NEW.is_active"
    f" OR {SQLITE_HOUR.format(r='OLD')} IS NOT {SQLITE_HOUR.format(r='NEW')})"
)


def _sqlite_owner_moves(sign: str, tier: str, user: str) -> str:
    """A user's integrations, grouped, added under `tier` with `sign` (a tier change, a deleted user)."""
    return (
        f"INSERT INTO stat_integration_counts ({COUNT_KEY}, n) "
        f"SELECT {tier}, provider, type, status, health, is_active, {sign}count(*) FROM integrations "
        f"WHERE owner_id = {user}.id GROUP BY provider, type, status, health, is_active;"
        f"INSERT INTO stat_integration_freshness ({FRESH_KEY}, n) "
        f"SELECT {SQLITE_HOUR.format(r='integrations')}, {tier}, provider, type, status, {sign}count(*) "
        f"FROM integrations WHERE owner_id = {user}.id AND is_active "
        f"GROUP BY {SQLITE_HOUR.format(r='integrations')}, provider, type, status;"
    )


SQLITE_TRIGGERS = {
    "stat_integrations_insert": "AFTER INSERT ON integrations BEGIN "
    + _sqlite_count("NEW", "+")
    + _sqlite_fresh("NEW", "+")
    + " END",
    "stat_integrations_delete": "AFTER DELETE ON integrations BEGIN "
    + _sqlite_count("OLD", "-")
    + _sqlite_fresh("OLD", "-")
    + " END",
    "stat_integrations_update": "AFTER UPDATE OF owner_id, provider, type, status, health, is_active, "
    "last_checked_at, created_at ON integrations BEGIN "
    + _sqlite_count("OLD", "-", COUNT_CHANGED)
    + _sqlite_count("NEW", "+", COUNT_CHANGED)
    + _sqlite_fresh("OLD", "-", FRESH_CHANGED)
    + _sqlite_fresh("NEW", "+", FRESH_CHANGED)
    + " END",
    # The cascade that follows deletes the integrations when their owner is gone: those find no owner row.
    "stat_users_delete": "BEFORE DELETE ON users BEGIN " + _sqlite_owner_moves("-", "OLD.tier", "OLD") + " END",
    "stat_users_tier": "AFTER UPDATE OF tier ON users WHEN OLD.tier IS NOT NEW.tier BEGIN "
    + _sqlite_owner_moves("-", "OLD.tier", "NEW")
    + _sqlite_owner_moves("+", "NEW.tier", "NEW")
    + " END",
    "stat_audit_checks": "AFTER INSERT ON audit_events WHEN NEW.action = 'integration.test' "
    "AND NEW.outcome IN ('success', 'failure') AND NEW.integration_id IS NOT NULL BEGIN "
    "INSERT INTO stat_check_days (day, tier, provider, passed, failed) "
    "SELECT date(NEW.at), coalesce(u.tier, ''), coalesce(i.provider, ''), NEW.outcome = 'success', "
    "NEW.outcome = 'failure' FROM (SELECT NEW.integration_id AS id) e "
    "LEFT JOIN integrations i ON i.id = e.id LEFT JOIN users u ON u.id = i.owner_id; END",
}

# ----- PostgreSQL: one function per table; the owner row is read FOR SHARE, so a tier change waits for the
# integration writes under way (and they for it), and no integration is counted under a tier it left --------

PG_HOUR = "floor(extract(epoch FROM coalesce({r}.last_checked_at, {r}.created_at)) / 3600)::bigint"

PG_FUNCTIONS = f"""
CREATE OR REPLACE FUNCTION stat_integrations_change() RETURNS trigger AS $$
DECLARE
    old_tier varchar;
    new_tier varchar;
BEGIN
    IF TG_OP <> 'INSERT' THEN
        SELECT tier INTO old_tier FROM users WHERE id = OLD.owner_id FOR SHARE;
    END IF;
    IF TG_OP <> 'DELETE' THEN
        SELECT tier INTO new_tier FROM users WHERE id = NEW.owner_id FOR SHARE;
    END IF;
    IF TG_OP = 'UPDATE' THEN
        IF (old_tier, OLD.provider, OLD.type, OLD.status, OLD.health, OLD.is_active)
           IS DISTINCT FROM (new_tier, NEW.provider, NEW.type, NEW.status, NEW.health, NEW.is_active) THEN
            IF old_tier IS NOT NULL THEN
                INSERT INTO stat_integration_counts ({COUNT_KEY}, n)
                VALUES (old_tier, OLD.provider, OLD.type, OLD.status, OLD.health, OLD.is_active, -1);
            END IF;
            IF new_tier IS NOT NULL THEN
                INSERT INTO stat_integration_counts ({COUNT_KEY}, n)
                VALUES (new_tier, NEW.provider, NEW.type, NEW.status, NEW.health, NEW.is_active, 1);
            END IF;
        END IF;
        IF (old_tier, OLD.provider, OLD.type, OLD.status, OLD.is_active, {PG_HOUR.format(r="OLD")})
           IS DISTINCT FROM
           (new_tier, NEW.provider, NEW.type, NEW.status, NEW.is_active, {PG_HOUR.format(r="NEW")}) THEN
            IF old_tier IS NOT NULL AND OLD.is_active THEN
                INSERT INTO stat_integration_freshness ({FRESH_KEY}, n)
                VALUES ({PG_HOUR.format(r="OLD")}, old_tier, OLD.provider, OLD.type, OLD.status, -1);
            END IF;
            IF new_tier IS NOT NULL AND NEW.is_active THEN
                INSERT INTO stat_integration_freshness ({FRESH_KEY}, n)
                VALUES ({PG_HOUR.format(r="NEW")}, new_tier, NEW.provider, NEW.type, NEW.status, 1);
            END IF;
        END IF;
        RETURN NULL;
    END IF;
    IF TG_OP = 'DELETE' AND old_tier IS NOT NULL THEN
        INSERT INTO stat_integration_counts ({COUNT_KEY}, n)
        VALUES (old_tier, OLD.provider, OLD.type, OLD.status, OLD.health, OLD.is_active, -1);
        IF OLD.is_active THEN
            INSERT INTO stat_integration_freshness ({FRESH_KEY}, n)
            VALUES ({PG_HOUR.format(r="OLD")}, old_tier, OLD.provider, OLD.type, OLD.status, -1);
        END IF;
    END IF;
    IF TG_OP = 'INSERT' AND new_tier IS NOT NULL THEN
        INSERT INTO stat_integration_counts ({COUNT_KEY}, n)
        VALUES (new_tier, NEW.provider, NEW.type, NEW.status, NEW.health, NEW.is_active, 1);
        IF NEW.is_active THEN
            INSERT INTO stat_integration_freshness ({FRESH_KEY}, n)
            VALUES ({PG_HOUR.format(r="NEW")}, new_tier, NEW.provider, NEW.type, NEW.status, 1);
        END IF;
    END IF;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION stat_owner_moves(owner integer, tier varchar, sign integer) RETURNS void AS $$
BEGIN
    INSERT INTO stat_integration_counts ({COUNT_KEY}, n)
    SELECT tier, i.provider, i.type, i.status, i.health, i.is_active, sign * count(*) FROM integrations i
    WHERE i.owner_id = owner GROUP BY i.provider, i.type, i.status, i.health, i.is_active;
    INSERT INTO stat_integration_freshness ({FRESH_KEY}, n)
    SELECT {PG_HOUR.format(r="i")}, tier, i.provider, i.type, i.status, sign * count(*) FROM integrations i
    WHERE i.owner_id = owner AND i.is_active GROUP BY {PG_HOUR.format(r="i")}, i.provider, i.type, i.status;
END
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION stat_users_change() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        -- Before the cascade deletes the integrations, which then find no owner row.
        PERFORM stat_owner_moves(OLD.id, OLD.tier, -1);
        RETURN OLD;
    END IF;
    PERFORM stat_owner_moves(NEW.id, OLD.tier, -1);
    PERFORM stat_owner_moves(NEW.id, NEW.tier, 1);
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION stat_audit_checks() RETURNS trigger AS $$
BEGIN
    INSERT INTO stat_check_days (day, tier, provider, passed, failed)
    SELECT NEW.at::date, coalesce(u.tier, ''), coalesce(i.provider, ''),
           CASE WHEN NEW.outcome = 'success' THEN 1 ELSE 0 END, CASE WHEN NEW.outcome = 'failure' THEN 1 ELSE 0 END
    FROM (SELECT NEW.integration_id AS id) e
    LEFT JOIN integrations i ON i.id = e.id LEFT JOIN users u ON u.id = i.owner_id;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;
"""

PG_TRIGGERS = {
    "stat_integrations_insert": "AFTER INSERT ON integrations FOR EACH ROW EXECUTE FUNCTION stat_integrations_change()",
    "stat_integrations_delete": "AFTER DELETE ON integrations FOR EACH ROW EXECUTE FUNCTION stat_integrations_change()",
    "stat_integrations_update": "AFTER UPDATE OF owner_id, provider, type, status, health, is_active, "
    "last_checked_at, created_at ON integrations FOR EACH ROW EXECUTE FUNCTION stat_integrations_change()",
    "stat_users_delete": "BEFORE DELETE ON users FOR EACH ROW EXECUTE FUNCTION stat_users_change()",
    "stat_users_tier": "AFTER UPDATE OF tier ON users FOR EACH ROW WHEN (OLD.tier IS DISTINCT FROM NEW.tier) "
    "EXECUTE FUNCTION stat_users_change()",
    "stat_audit_checks": "AFTER INSERT ON audit_events FOR EACH ROW WHEN (NEW.action = 'integration.test' "
    "AND NEW.outcome IN ('success', 'failure') AND NEW.integration_id IS NOT NULL) "
    "EXECUTE FUNCTION stat_audit_checks()",
}
TRIGGER_TABLES = {
    "stat_integrations_insert": "integrations",
    "stat_integrations_delete": "integrations",
    "stat_integrations_update": "integrations",
    "stat_users_delete": "users",
    "stat_users_tier": "users",
    "stat_audit_checks": "audit_events",
}


def create(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(text(PG_FUNCTIONS))
        for name, body in PG_TRIGGERS.items():
            conn.execute(text(f"CREATE TRIGGER {name} {body}"))
    else:
        for name, body in SQLITE_TRIGGERS.items():
            conn.execute(text(f"CREATE TRIGGER {name} {body}"))


def drop(conn: Connection, functions: bool = False) -> None:
    postgresql = conn.dialect.name == "postgresql"
    for name, table in TRIGGER_TABLES.items():
        conn.execute(text(f"DROP TRIGGER IF EXISTS {name}" + (f" ON {table}" if postgresql else "")))
    if postgresql and functions:
        for function in (
            "stat_integrations_change()",
            "stat_owner_moves(integer, varchar, integer)",
            "stat_users_change()",
            "stat_audit_checks()",
        ):
            conn.execute(text(f"DROP FUNCTION IF EXISTS {function}"))
