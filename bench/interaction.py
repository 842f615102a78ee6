"""Interaction latency in Chromium on the largest dataset: from a click until the new content shows, on
the administrator's Integrations page (every integration), against the same click in a minimal Streamlit
app (a button that changes a table) started the same way (bench/startup.py's `streamlit run`).

Three interactions: Next page, change a filter (Status), open an integration (its page). "The new content
shows" is the moment the text of the page's main area differs from what it was before the click: that
holds whatever the page is made of, so the figure does not depend on how the page draws its table.
Every element is found by its visible text or role, all of them in SELECTORS below; one that is missing
is reported (SKIPPED, naming it) and the other interactions are still measured. One warm-up of each,
then --repeats rounds (at most 7) alternating the app and the minimal app; the ratio is of the medians.

A missed target's line tells the server's part from the browser's: the same interaction replayed in
Streamlit's AppTest in a worker process (the script runs it causes, timed, then once under the profiler:
bench/profile.py), so "server run 400 ms of 900 ms" says how much the page's script costs and what in it.
"""

from __future__ import annotations

import itertools
import os
import re
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

from bench.common import DATA_DIR, BenchError, Figure, Options, Target, failed, median, run_worker, skipped, worker_main
from bench.generate import ADMIN
from bench.startup import START_TIMEOUT, free_port, streamlit_process, wait_for_port
from tests.browser.helpers import tick_row
from tests.chromium import CHROMIUM, CHROMIUM_ARGS

LIMIT = 1.5
MAX_ROUNDS = 7
WAIT_MS = 60_000  # one interaction may take
MAIN = '[data-testid="stMain"]'
# What a person clicks, by visible text and role, in one place (the Integrations page changes often).
SELECTORS = {
    "next": ("button", re.compile(r"\bNext$")),  # an icon's name may come first ("chevron_right Next")
    "filter": ("Status", "Error", re.compile(r"^All")),  # the filter's label, an option, the way back
    "open": ("link", re.compile(r"\bOpen$")),  # the ticked row's panel link to its page (after an icon name)
}
MINIMAL_APP = """import pandas as pd
import streamlit as st

st.title("Minimal")
if "offset" not in st.session_state:
    st.session_state.offset = 0


def next_page():
    st.session_state.offset += 50


st.button("Next", on_click=next_page)
offset = st.session_state.offset
st.caption(f"Showing {offset + 1}–{offset + 50}")
rows = range(offset, offset + 50)
st.dataframe(pd.DataFrame({"Row": rows, "Name": [f"row {i}" for i in rows]}))
"""
CASES = (
    ("next", "Interaction: Next page"),
    ("filter", "Interaction: change a filter"),
    ("open", "Interaction: open an integration"),
)


class Missing(BenchError):
    """An element the interaction needs is not on the page."""


def figures(target: Target, options: Options) -> list[Figure]:
    names = [f"{name}, {target.size}" for _, name in CASES]
    if not Path(CHROMIUM).exists():
        return [skipped(n, target.database, LIMIT, f"{CHROMIUM} is not installed") for n in names]
    try:
        minimal, app = measure(target, min(options.repeats, MAX_ROUNDS))
    except Exception as exc:
        return [failed(n, target.database, LIMIT, f"{type(exc).__name__}: {exc}") for n in names]
    result = []
    for (key, _), name in zip(CASES, names, strict=True):
        timings = app[key]
        if isinstance(timings, str):
            result.append(skipped(name, target.database, LIMIT, timings))
            continue
        ours, theirs = median(timings), median(minimal)
        measured = f"median {ours * 1000:.0f} ms vs {theirs * 1000:.0f} ms in a minimal app ({len(timings)} clicks)"
        result.append(Figure(name, target.database, measured, ours / theirs, LIMIT, details={"app_s": timings}))
    if any(f.status == "MISSED" for f in result):
        explain(result, target, options)
    return result


def explain(result: list[Figure], target: Target, options: Options) -> None:
    """Each missed figure's note: the server's share of the click and its profile (an AppTest replay)."""
    from bench.pages import profile_note

    try:
        replayed = run_worker("bench.interaction", {"repeats": 3}, options.timeout, target.env)
    except Exception as exc:
        replayed = {key: {"error": f"{type(exc).__name__}: {exc}"} for key, _ in CASES}
    for (key, _), figure in zip(CASES, result, strict=True):
        if figure.status != "MISSED":
            continue
        answer = replayed.get(key, {})
        if "error" in answer:
            figure.note = f"no replay ({answer['error']})"
            continue
        clicked_ms = median(figure.details["app_s"]) * 1000
        profile = answer["profile"]
        figure.note = (
            f"server run {answer['median_ms']:.0f} ms of the click's {clicked_ms:.0f} ms "
            f"(AppTest replay, {profile.get('statements', 0)} SQL statements); {profile_note(profile)}"
        )


def measure(target: Target, rounds: int) -> tuple[list[float], dict[str, list[float] | str]]:
    from playwright.sync_api import sync_playwright

    from bench.startup import member_session

    script = DATA_DIR / "minimal_app" / "minimal.py"
    script.parent.mkdir(parents=True, exist_ok=True)
    script.write_text(MINIMAL_APP)
    env = {**os.environ, **target.env}
    with member_session(target, ADMIN) as cookie, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            with (
                served(browser, script, env, None) as (minimal_page, minimal_url),
                served(browser, Path("app.py").resolve(), env, cookie) as (page, url),
            ):
                return interleaved(page, f"{url}/integrations", minimal_page, minimal_url, rounds)
        finally:
            browser.close()


def interleaved(page, list_url: str, minimal_page, minimal_url: str, rounds: int):
    minimal: list[float] = []
    app: dict[str, list[float] | str] = {key: [] for key, _ in CASES}
    open_page(minimal_page, minimal_url, lambda p: p.get_by_role("button", name="Next").wait_for(timeout=WAIT_MS))
    for round_number in range(rounds + 1):  # the first is a warm-up
        elapsed = clicked(minimal_page, lambda p: p.get_by_role("button", name="Next").click())
        if round_number:
            minimal.append(elapsed)
        for key, _ in CASES:
            if isinstance(app[key], str):
                continue
            try:
                elapsed = INTERACTIONS[key](page, list_url, round_number)
            except Missing as exc:
                app[key] = str(exc)
                continue
            if round_number:
                app[key].append(elapsed)  # type: ignore[union-attr]
    return minimal, app


def open_page(page, url: str, ready: Callable) -> None:
    page.goto(url, timeout=START_TIMEOUT * 1000)
    ready(page)
    settled(page)


def list_ready(page) -> None:
    page.get_by_role("heading", name="Integrations", exact=True).wait_for(timeout=WAIT_MS)
    if page.get_by_text("User name", exact=True).count():
        raise BenchError("the app shows the sign-in form: the session cookie was not accepted")


def settled(page) -> None:
    """Streamlit has finished the run (no running indicator)."""
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=WAIT_MS, polling=50
    )


def clicked(page, click: Callable) -> float:
    """Seconds from the click until the main area's text differs from before it."""
    settled(page)
    before = page.locator(MAIN).inner_text(timeout=WAIT_MS)
    started = time.perf_counter()
    click(page)
    page.wait_for_function(
        f"(before) => {{ const m = document.querySelector('{MAIN}'); return m && m.innerText !== before; }}",
        arg=before,
        timeout=WAIT_MS,
        polling="raf",
    )
    return time.perf_counter() - started


# How long an element may take to show before it counts as missing: the first render of the page over a
# large dataset on a loaded machine took longer than 30 s.
FIND_MS = 120_000


def present(locator, what: str):
    try:
        locator.first.wait_for(timeout=FIND_MS)
    except Exception as exc:
        raise Missing(f"the Integrations page has no {what} (looked for {FIND_MS // 1000} s)") from exc
    return locator.first


def next_page(page, list_url: str, round_number: int) -> float:
    if round_number == 0:
        open_page(page, list_url, list_ready)
    role, name = SELECTORS["next"]
    button = present(page.get_by_role(role, name=name), f"{role} named {name.pattern!r}")
    if button.is_disabled():
        raise Missing("the Integrations page's Next button is disabled: there is no second page")
    return clicked(page, lambda p: button.click())


def change_filter(page, list_url: str, round_number: int) -> float:
    label, option, back = SELECTORS["filter"]
    if round_number == 0:
        open_page(page, list_url, list_ready)
    # The widget around the (possibly visually hidden) labelled input: that is what a person clicks.
    labelled = page.get_by_label(label, exact=True)
    field = present(page.locator("[data-testid^=st]").filter(has=labelled).last, f"filter labelled {label!r}")
    # Alternate from what it shows now: the option, then back to all (a filter changed each time; opening
    # an integration reloads the list with its filters reset).
    choice = back if option in field.inner_text() else option

    # The list opens first, untimed: what is timed is the click on the option, as the minimal app's is
    # the click on its button (one click each, to the new content shown).
    field.click()
    wanted = page.get_by_role("option", name=choice)
    option = present(wanted, f"option {choice if isinstance(choice, str) else choice.pattern!r} in {label!r}")
    return clicked(page, lambda p: option.click())


def open_integration(page, list_url: str, _round_number: int) -> float:
    """From the list (every round): tick the first row, then time the click on its panel's Open link."""
    open_page(page, list_url, list_ready)
    tick_row(page, 0)
    role, name = SELECTORS["open"]
    link = present(page.get_by_role(role, name=name), f"{role} named {name.pattern!r} (a ticked row's panel)")
    elapsed = clicked(page, lambda p: link.click())
    open_page(page, list_url, list_ready)  # back on the list for the next round's other interactions
    return elapsed


INTERACTIONS = {"next": next_page, "filter": change_filter, "open": open_integration}


@contextmanager
def served(browser, script: Path, env: dict, cookie: tuple[str, str] | None):
    """(a page of a new browser context, the base URL) of `streamlit run script`, started as for the
    start-up benchmark; stopped after."""
    port = free_port()
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    if cookie:
        context.add_cookies([{"name": cookie[0], "value": cookie[1], "domain": "127.0.0.1", "path": "/"}])
    try:
        with streamlit_process(script, port, env):
            wait_for_port(port, time.perf_counter() + START_TIMEOUT)
            page = context.new_page()
            page.set_default_timeout(WAIT_MS)
            yield page, f"http://127.0.0.1:{port}"
    finally:
        context.close()


# ----- the worker process: the interactions replayed in AppTest ----------------------------------------

LIST_PAGE = "app_pages/integrations.py"


def replay(payload: dict) -> dict:
    """Per interaction, the median of `repeats` timed replays (the script runs the click causes, a
    st.rerun included) and one more under the profiler."""
    import app_context
    from bench.apptest import checked, compiled_once, signed_in_app, start_session
    from bench.profile import profiled
    from core.integrations.service import ListQuery
    from core.settings import load_settings

    ctx = app_context.build(load_settings(), migrate=False)
    token = start_session(ctx, ADMIN)
    admin = ctx.users.get_by_username(ADMIN).actor()
    first = ctx.integrations.page(admin, ListQuery(limit=1)).views[0].id
    choices = itertools.cycle(("Error", "All statuses"))  # a filter changed each time

    def next_page(at):
        at.button(key="list_next").click()
        return at

    def change_filter(at):
        at.selectbox(key="list_status").select(next(choices))
        return at

    def open_integration(at):
        """The list first (untimed), then the link's page in the same session, as the browser's click."""
        checked(at.switch_page(LIST_PAGE).run(), "the list before opening")
        at.query_params["id"] = str(first)
        return at.switch_page("app_pages/integration.py")

    steps = {"next": next_page, "filter": change_filter, "open": open_integration}
    answer: dict = {}
    try:
        with compiled_once():
            at = signed_in_app(ADMIN, token, LIST_PAGE)
            for key, step in steps.items():
                try:
                    times = []
                    for attempt in range(payload["repeats"] + 1):  # the first warms up
                        prepared = step(at)
                        started = time.perf_counter()
                        checked(prepared.run(), f"the {key} replay")
                        if attempt:
                            times.append(time.perf_counter() - started)
                    prepared = step(at)
                    with profiled() as profile:
                        checked(prepared.run(), f"the {key} replay")
                    answer[key] = {"median_ms": median(times) * 1000, "profile": profile.summary()}
                except Exception as exc:
                    answer[key] = {"error": f"{type(exc).__name__}: {exc}"}
    finally:
        ctx.sessions.revoke(token)
        ctx.engine.dispose()
    return answer


if __name__ == "__main__":
    worker_main(replay)
