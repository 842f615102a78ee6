"""The layers go one way, and the project checks it itself: pages -> ui -> providers -> core.

- core/ imports none of streamlit, providers/, ui/, the pages or the composition roots;
- providers/ import none of streamlit, ui/ or the pages;
- ui/ imports no page;
- a page (app_pages/*.py, Home.py) holds no SQL, no cryptography and no raw HTTP: a rule a page needs
  belongs in core/, behind a service.

Imports are read from each file's syntax tree, so a lazy import inside a function counts as well.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ROOTS = ("Home", "app", "app_context", "manage")  # composition roots: they wire every layer together
PAGES = sorted([*(ROOT / "app_pages").glob("*.py"), ROOT / "Home.py"])

FORBIDDEN = {
    "core": ("streamlit", "providers", "ui", "app_pages", *ROOTS),
    "providers": ("streamlit", "ui", "app_pages", *ROOTS),
    "ui": ("app_pages",),
}
# What a page may not import: SQL, cryptography, raw HTTP and sockets, and the modules that do those jobs.
PAGE_FORBIDDEN = (
    "sqlalchemy",
    "psycopg",
    "pymysql",
    "sqlite3",
    "core.db",
    "core.models",
    "cryptography",
    "hashlib",
    "hmac",
    "secrets",
    "bcrypt",
    "core.crypto",
    "core.keys",
    "requests",
    "urllib",
    "urllib3",
    "http",
    "httpx",
    "socket",
    "ssl",
    "authlib",
    "core.http",
    "threading",
    "concurrent",
)
# SQL keywords as SQL is written (upper case), so page text such as "Select the inbox from the list" passes.
SQL = re.compile(r"\b(SELECT\s.+\sFROM|INSERT\s+INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM)\b")


def imported_modules(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
            # `from core import crypto` imports core.crypto
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return found


def starts_with(module: str, prefixes: tuple[str, ...]) -> str | None:
    return next((p for p in prefixes if module == p or module.startswith(p + ".")), None)


def modules_of(layer: str) -> list[Path]:
    return sorted(p for p in (ROOT / layer).rglob("*.py") if "migrations" not in p.parts or layer != "core")


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_a_layer_imports_only_what_lies_below_it(layer):
    problems = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path in modules_of(layer)
        for line, module in imported_modules(path)
        if starts_with(module, FORBIDDEN[layer])
    ]
    assert not problems, f"{layer}/ must not import {', '.join(FORBIDDEN[layer])}:\n" + "\n".join(problems)


def test_the_migrations_import_no_upper_layer():
    problems = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path in sorted((ROOT / "core" / "migrations").rglob("*.py"))
        for line, module in imported_modules(path)
        if starts_with(module, FORBIDDEN["core"])
    ]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_a_page_holds_no_sql_crypto_or_raw_http(page):
    problems = [
        f"line {line} imports {module}"
        for line, module in imported_modules(page)
        if starts_with(module, PAGE_FORBIDDEN)
    ]
    tree = ast.parse(page.read_text(encoding="utf-8"))
    problems += [
        f"line {node.lineno} holds SQL: {node.value[:60]!r}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and SQL.search(node.value)
    ]
    assert not problems, f"{page.name} must call services, not do their work:\n" + "\n".join(problems)


def test_the_check_finds_what_it_forbids(tmp_path):
    """The checks above would pass on an empty tree: show that they see each kind of breach."""
    page = tmp_path / "bad_page.py"
    page.write_text(
        "import requests\nfrom core import crypto\ndef f():\n    from sqlalchemy import text\n"
        "    return 'SELECT id FROM users'\n",
        encoding="utf-8",
    )
    modules = [module for _, module in imported_modules(page)]
    assert starts_with("requests", PAGE_FORBIDDEN) and "core.crypto" in modules and "sqlalchemy" in modules
    assert SQL.search("SELECT id FROM users") and not SQL.search("Select the inbox from the list")
    assert starts_with("streamlit.runtime", FORBIDDEN["core"]) == "streamlit"
    assert starts_with("providers_extra", FORBIDDEN["core"]) is None
    assert modules_of("core") and modules_of("providers") and modules_of("ui") and PAGES
