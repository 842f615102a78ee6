"""The migrations build exactly the schema the models describe, on SQLite and on PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from core.db import alembic_config
from core.models import Base


def test_the_database_is_at_the_newest_migration(ctx, database_url):
    head = ScriptDirectory.from_config(alembic_config(database_url)).get_current_head()
    with ctx.engine.connect() as connection:
        assert MigrationContext.configure(connection).get_current_revision() == head


def test_the_migrated_schema_matches_the_models(ctx):
    with ctx.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert differences == []


def test_the_quick_head_check_agrees_with_alembic(database_url):
    from alembic.script import ScriptDirectory

    from core.db import alembic_config, head_revision

    assert head_revision() == ScriptDirectory.from_config(alembic_config(database_url)).get_current_head()
