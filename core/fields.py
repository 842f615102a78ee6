"""Field definitions a provider declares, their validation, nested names and masking."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal, TypeGuard, cast
from urllib.parse import urlsplit

FieldType = Literal["text", "password", "url", "number", "checkbox", "select", "json", "textarea"]
MASK = "••••••••"
MAX_TEXT_LENGTH = 4096
MAX_JSON_LENGTH = 16384
MAX_NUMBER = 1e15
MAX_JSON_DEPTH = 20  # json.loads recurses once per level: thousands of levels raise RecursionError
MULTILINE_TYPES = ("json", "textarea")
# A stored secret may be told apart by its last HINT_LENGTH characters, only when it is at least
# HINT_MIN_LENGTH long (so the hint gives away at most a third of it).
HINT_LENGTH = 4
HINT_MIN_LENGTH = 12
_SURROGATE = re.compile(r"[\ud800-\udfff]")  # half of a UTF-16 pair: no encoding can send it
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CONTROL_EXCEPT_LINES = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
# A configuration: a JSON object, so its keys are strings; a dotted name reaches into nested ones.
Config = dict[str, Any]


def _is_config(value: object) -> TypeGuard[Config]:
    """A nested value is an object (JSON objects, the only dicts a configuration holds, have string keys)."""
    return isinstance(value, dict)


@dataclass(frozen=True)
class FieldSpec:
    """One configuration field. A dotted name (features.syncContacts) is a nested value."""

    name: str
    label: str
    type: FieldType = "text"
    required: bool = False
    pattern: str | None = None
    pattern_message: str | None = None
    min_length: int | None = None
    help: str | None = None
    placeholder: str | None = None
    default: Any = None
    options: tuple[str, ...] = ()
    sensitive: bool = False
    # A fresh value a new form starts with (a generated webhook secret the person copies before saving).
    default_factory: Callable[[], Any] | None = None
    # Show the field only when another field has one of these values, e.g. ("authType", ("API_KEY",)).
    shown_when: tuple[str, tuple[str, ...]] | None = None
    # Words a select shows for its stored values, e.g. (("API_KEY", "API key"),); values without one show as is.
    option_labels: tuple[tuple[str, str], ...] = ()

    def option_label(self, value: Any) -> str:
        return dict(self.option_labels).get(value, str(value))

    def is_shown(self, config: Config) -> bool:
        if self.shown_when is None:
            return True
        other, values = self.shown_when
        return get_path(config, other) in values


def get_path(config: Config, dotted: str, default: Any = None) -> Any:
    node: Any = config
    for part in dotted.split("."):
        if not _is_config(node) or part not in node:
            return default
        node = node[part]
    return node


def set_path(config: Config, dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = config
    for part in parts[:-1]:
        child = node.get(part)
        if not _is_config(child):
            child = {}
            node[part] = child
        node = child
    node[parts[-1]] = value


def delete_path(config: Config, dotted: str) -> None:
    parts = dotted.split(".")
    node = config
    for part in parts[:-1]:
        child = node.get(part)
        if not _is_config(child):
            return
        node = child
    node.pop(parts[-1], None)


def leaf_names(config: dict[str, Any], prefix: str = "") -> set[str]:
    """Every dotted name (as get_path takes it) of a value in config that is not itself a mapping."""
    names: set[str] = set()
    for key, value in config.items():
        name = f"{prefix}{key}"
        names |= leaf_names(cast(dict[str, Any], value), name + ".") if isinstance(value, dict) else {name}
    return names


def is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.strip() == "")


def _check_url(value: str) -> str | None:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "Enter a full web address starting with http:// or https://."
    if parts.username or parts.password:
        return "Leave user names and passwords out of the address; use the credential fields."
    return None


def text_problem(value: str, multiline: bool = False) -> str | None:
    """Why this text cannot be stored or sent (a lone surrogate, a control character), or None.

    Every text a FieldSpec takes, and an integration's name, goes through here: such characters
    cannot be encoded into a request, a header or a log line. Tabs and line breaks are kept where a
    field has several lines (``multiline``)."""
    if _SURROGATE.search(value):
        return "This holds a character that is not valid text (half of a UTF-16 pair). Type or paste it again."
    if (_CONTROL_EXCEPT_LINES if multiline else _CONTROL).search(value):
        kind = "control characters" if multiline else "control characters, tabs or line breaks"
        return f"Remove the {kind}: they cannot be sent."
    return None


def json_too_deep(value: str, limit: int = MAX_JSON_DEPTH) -> bool:
    """True when arrays and objects nest deeper than ``limit`` (counted without parsing, so it is safe to
    ask before json.loads, which recurses once per level and raises RecursionError on thousands)."""
    depth, in_string, escaped = 0, False, False
    for char in value:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > limit:
                return True
        elif char in "]}":
            depth -= 1
    return False


def _json_text_problem(parsed: Any) -> str | None:
    """text_problem of every key and string in a parsed JSON value (escapes such as \\ud800 decode to them)."""
    pending = [parsed]
    while pending:
        node = pending.pop()
        if _is_config(node):
            pending += list(node.keys()) + list(node.values())
        elif isinstance(node, list):
            pending += node
        elif isinstance(node, str) and (problem := text_problem(node, multiline=True)):
            return problem
    return None


def _check_number(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return "Enter a number."
    try:
        number = float(value)
    except (ValueError, OverflowError):
        return "Enter a number."
    if not math.isfinite(number) or abs(number) > MAX_NUMBER:
        return f"Enter a number between {-MAX_NUMBER:g} and {MAX_NUMBER:g}."
    return None


def _check_value(spec: FieldSpec, value: Any) -> str | None:
    """The message for one present value, or None when it is valid."""
    if spec.type == "checkbox":
        return None if isinstance(value, bool) else "Choose on or off."
    if spec.type == "number":
        return _check_number(value)
    if not isinstance(value, str):
        return "Enter text."
    limit = MAX_JSON_LENGTH if spec.type == "json" else MAX_TEXT_LENGTH
    if len(value) > limit:
        return f"Keep this under {limit} characters."
    if problem := text_problem(value, multiline=spec.type in MULTILINE_TYPES):
        return problem
    if spec.min_length and len(value) < spec.min_length:
        return f"{spec.label} must be at least {spec.min_length} characters long."
    if spec.type == "url" and (problem := _check_url(value.strip())):
        return problem
    if spec.type == "select" and spec.options and value not in spec.options:
        return f"Choose one of: {', '.join(spec.option_label(option) for option in spec.options)}."
    if spec.type == "json":
        if json_too_deep(value):
            return f"This JSON is nested too deeply: keep it within {MAX_JSON_DEPTH} levels of objects and arrays."
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError as exc:
            return f"This is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})."
        except RecursionError:  # unreachable after the depth check; kept so it can never escape
            return f"This JSON is nested too deeply: keep it within {MAX_JSON_DEPTH} levels of objects and arrays."
        if not isinstance(parsed, dict):
            return 'Enter a JSON object, for example {"token": "..."}.'
        if problem := _json_text_problem(parsed):
            return problem
    if spec.pattern and not re.fullmatch(spec.pattern, value.strip()):
        return spec.pattern_message or f"{spec.label} is not in the expected format."
    return None


def validate(specs: Iterable[FieldSpec], config: Config, keep_secrets: Iterable[str] = ()) -> dict[str, str]:
    """Return {field name: message} for every problem. Fields in keep_secrets are already stored."""
    keep = set(keep_secrets)
    errors: dict[str, str] = {}
    for spec in specs:
        if not spec.is_shown(config):
            continue
        value = get_path(config, spec.name)
        if is_blank(value) or (spec.sensitive and value == MASK):
            if spec.required and spec.name not in keep:
                errors[spec.name] = f"{spec.label} is required."
            continue
        if problem := _check_value(spec, value):
            errors[spec.name] = problem
    return errors


def normalise(specs: Iterable[FieldSpec], config: Config) -> Config:
    """Trim text, convert numbers, apply defaults, and drop keys no field declares."""
    clean: Config = {}
    for spec in specs:
        if not spec.is_shown(config):
            continue  # a field the chosen options hide is not kept
        value = get_path(config, spec.name)
        if value is None or (spec.type == "number" and is_blank(value)):
            value = spec.default
        if value is None:
            continue
        if spec.type == "number":
            number = float(value)
            value = int(number) if number.is_integer() else number
        elif isinstance(value, str) and spec.type not in ("password", "json", "textarea"):
            value = value.strip()
        if spec.type == "url" and isinstance(value, str):
            value = value.rstrip("/")
        set_path(clean, spec.name, value)
    return clean


def rooted_path(value: Any) -> Any:
    """A path typed without its leading slash (api/health) gets one (/api/health); anything else is kept."""
    if isinstance(value, str) and value.strip() and not value.strip().startswith("/"):
        return "/" + value.strip()
    return value


def sensitive_names(specs: Iterable[FieldSpec]) -> list[str]:
    return [spec.name for spec in specs if spec.sensitive]


def masked(specs: Iterable[FieldSpec], config: Config) -> Config:
    """A copy safe to show: every stored sensitive value becomes the mask."""
    copy: Config = json.loads(json.dumps(config))
    for name in sensitive_names(specs):
        if not is_blank(get_path(copy, name)):
            set_path(copy, name, MASK)
    return copy


def secret_hint(value: Any) -> str | None:
    """The last HINT_LENGTH characters of a plaintext secret of at least HINT_MIN_LENGTH, to tell which one
    is stored; None for anything shorter (or not text), where even four characters give too much away."""
    if not isinstance(value, str) or len(value) < HINT_MIN_LENGTH or value == MASK:
        return None
    return value[-HINT_LENGTH:]


def secret_hints(specs: Iterable[FieldSpec], plain: Config) -> dict[str, str]:
    """{field name: hint} for the sensitive single-line values of a decrypted configuration that have one.

    A JSON or multi-line secret (a key file, a credentials object) gets none: its end is not a secret's tail."""
    hints: dict[str, str] = {}
    for spec in specs:
        if spec.sensitive and spec.type not in MULTILINE_TYPES and (hint := secret_hint(get_path(plain, spec.name))):
            hints[spec.name] = hint
    return hints
