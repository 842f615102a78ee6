"""Alembic environment: the URL comes from core.db.alembic_config, never from a file."""

from alembic import context
from sqlalchemy import create_engine

from core.db import normalise_url
from core.models import Base
from core.settings import load_settings

config = context.config


def run_migrations() -> None:
    url = config.get_main_option("sqlalchemy.url") or normalise_url(load_settings().database_url)
    if context.is_offline_mode():
        context.configure(url=url, target_metadata=Base.metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(url)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run_migrations()
