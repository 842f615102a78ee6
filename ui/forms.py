"""Render a provider's FieldSpecs as Streamlit widgets and read the values back."""

from __future__ import annotations

import json

import streamlit as st

from core.fields import MASK, FieldSpec, get_path, set_path
from ui.text import esc


def controlling_fields(specs: tuple[FieldSpec, ...]) -> set[str]:
    """Fields whose value shows or hides others; they live outside the form so the form reacts."""
    return {spec.shown_when[0] for spec in specs if spec.shown_when}


def _initial(spec: FieldSpec, stored: dict):
    value = get_path(stored, spec.name)
    if value is not None and spec.sensitive:
        return MASK  # a stored secret never goes back to the browser
    if value is None:
        value = spec.default_factory() if spec.default_factory else spec.default
    if spec.type == "json" and isinstance(value, dict | list):
        value = json.dumps(value, indent=2)
    return value


def _label(spec: FieldSpec) -> str:
    return spec.label + (" *" if spec.required else "")


def field_widget(spec: FieldSpec, stored: dict, key_prefix: str, error: str | None = None, hint: str | None = None):
    """One widget for one field; returns what the person entered. hint: a stored secret's last four characters."""
    key = f"{key_prefix}:{spec.name}"
    value = _initial(spec, stored)
    common = {"key": key, "help": spec.help}
    if spec.type == "checkbox":
        result = st.checkbox(spec.label, value=bool(value), **common)
    elif spec.type == "select":
        options = list(spec.options)
        index = options.index(value) if value in options else 0
        result = st.selectbox(_label(spec), options, index=index, format_func=spec.option_label, **common)
    elif spec.type == "number":
        result = st.number_input(_label(spec), value=float(value) if value not in (None, "") else None, **common)
    elif spec.type in ("json", "textarea"):
        shown = value or ""
        result = st.text_area(_label(spec), value=shown, placeholder=spec.placeholder, **common)
    else:
        kind = "password" if spec.type == "password" or spec.sensitive else "default"
        shown = value or ""
        result = st.text_input(_label(spec), value=str(shown), type=kind, placeholder=spec.placeholder, **common)
    if spec.sensitive and value == MASK:
        ends = f" It ends in {esc(hint)}." if hint else ""
        st.caption(f"A value is stored.{ends} Leave the dots to keep it, or type a new one to replace it.")
    if error:
        st.markdown(f":red[{esc(error)}]")
    return result


def render_fields(
    specs, stored: dict, key_prefix: str, errors: dict, shown_with: dict, hints: dict | None = None
) -> dict:
    """Widgets for the fields that `shown_with` (the controlling values) shows; returns nested values.

    hints: {sensitive field: the last four characters of its stored value} (IntegrationView.secret_hints)."""
    config: dict = {}
    hints = hints or {}
    for spec in specs:
        if spec.is_shown(shown_with):
            widget = field_widget(spec, stored, key_prefix, errors.get(spec.name), hints.get(spec.name))
            set_path(config, spec.name, widget)
    return config
