"""Property: no input to any provider's form makes the service fail with anything but field messages."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.errors import ValidationError
from core.fields import set_path
from providers import CATALOG

ANY_VALUE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True),
    st.text(max_size=40),
    st.sampled_from(["", " ", "http://", "https://example.com", "{}", '{"token": 1}', "[]", "0", "-1", "\x00"]),
    st.lists(st.text(max_size=5), max_size=3),
    st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=2),
)


def configurations(provider):
    names = [spec.name for spec in provider.fields]
    return st.fixed_dictionaries({}, optional={name: ANY_VALUE for name in names}).map(_nested)


def _nested(flat: dict) -> dict:
    config: dict = {}
    for name, value in flat.items():
        set_path(config, name, value)
    return config


@pytest.mark.parametrize("provider", list(CATALOG), ids=lambda p: p.key)
def test_any_input_is_saved_or_refused_with_field_messages(ctx, admin, provider):
    field_names = {spec.name for spec in provider.fields}

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(config=configurations(provider), name=st.text(max_size=30))
    def check(config, name):
        try:
            ctx.integrations.create(admin, name, provider.key, config)
        except ValidationError as exc:
            assert exc.errors, "a refusal names at least one field"
            assert set(exc.errors) <= field_names | {"name"}, exc.errors
            assert all(isinstance(m, str) and m.strip() for m in exc.errors.values())

    check()
