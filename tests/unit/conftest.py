"""Unit-test fixtures shared by several modules (the database and the people are in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import event, text


@pytest.fixture
def written_just_before_the_flush(ctx):
    """written_just_before_the_flush(statement, **params): inside the block, the first flush of a session of
    ctx's finds `statement` committed just before it on another connection, as another tab's save between a
    page's load and its own. The block gets a list that holds True once the statement ran."""

    @contextmanager
    def racing(statement: str, **params) -> Iterator[list[bool]]:
        fired: list[bool] = []

        def someone_else_saves(session, flush_context, instances):
            if not fired:
                fired.append(True)
                with ctx.engine.begin() as conn:
                    conn.execute(text(statement), params)

        event.listen(ctx.factory, "before_flush", someone_else_saves)
        try:
            yield fired
        finally:
            event.remove(ctx.factory, "before_flush", someone_else_saves)

    return racing
