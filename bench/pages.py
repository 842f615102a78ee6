"""Page renders in Streamlit's AppTest against an empty (hello) page: median ratios.

One worker process per database: it signs in (see bench/apptest.py), renders every page once to warm
up, then times `AppTest.run()` of the hello page and of each app page, interleaved (the order rotates
each round), and answers with every timing. The ratio is the median page render over the median hello
render of the same process.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass

from bench.common import (
    ROOT,
    Figure,
    Options,
    Target,
    failed,
    median,
    ratio_figure,
    run_worker,
    skipped,
    worker_main,
)
from bench.generate import ADMIN, MEMBER


@dataclass(frozen=True)
class PageCase:
    name: str
    username: str
    page: str  # relative to Home.py
    limit: float
    fresh: bool = False  # empty st.cache_data before each render (the page's Refresh), so it reads the database


CASES = (
    PageCase("Integrations page, member with 200", MEMBER, "app_pages/integrations.py", 1.5),
    PageCase("Overview page, member with 200", MEMBER, "app_pages/overview.py", 1.5),
    PageCase("Statistics page, admin, all, fresh", ADMIN, "app_pages/statistics.py", 2.0, fresh=True),
    PageCase("Statistics page, admin, all, cached", ADMIN, "app_pages/statistics.py", 2.0),
)


def figures(target: Target, options: Options) -> list[Figure]:
    present = [case for case in CASES if (ROOT / case.page).is_file()]
    results = {
        case.name: skipped(case.name, target.database, case.limit, f"{case.page} does not exist yet") for case in CASES
    }
    if present:
        payload = {
            "cases": [(c.name, c.username, c.page, c.fresh) for c in present],
            "repeats": options.repeats,
            "warmup": options.warmup,
        }
        try:
            answer = run_worker("bench.pages", payload, options.timeout, target.env)
        except Exception as exc:
            for case in present:
                results[case.name] = failed(case.name, target.database, case.limit, str(exc))
        else:
            empty, hello = median(answer["empty"]), median(answer["hello"])
            for case in present:
                page = median(answer["cases"][case.name])
                figure = ratio_figure(case.name, target.database, page, empty, case.limit, "median render")
                figure.measured += (
                    f" (the app's empty page); {page / hello:.1f}x a bare hello script ({hello * 1000:.1f} ms)"
                )
                figure.details["hello_s"] = hello
                results[case.name] = figure
    return [results[case.name] for case in CASES]


# ----- the worker process ---------------------------------------------------------------------------


def timed_run(at, fresh: bool, around=contextlib.nullcontext) -> float:
    import streamlit as st

    from bench.apptest import checked

    if fresh:
        st.cache_data.clear()
    with around():
        started = time.perf_counter()
        at.run()
        elapsed = time.perf_counter() - started
    checked(at, "a timed render")
    return elapsed


def interleaved(apps: dict, repeats: int) -> dict[str, list[float]]:
    """`repeats` timed renders of each (app, fresh), one of each per round, the order rotating every round."""
    names = list(apps)
    timings: dict[str, list[float]] = {name: [] for name in names}
    for round_number in range(repeats):
        shift = round_number % len(names)
        for name in names[shift:] + names[:shift]:
            timings[name].append(timed_run(*apps[name]))
    return timings


def measure(payload: dict) -> dict:
    import app_context
    from bench.apptest import compiled_once, empty_body, hello_app, signed_in_app, start_session
    from core.settings import load_settings

    ctx = app_context.build(load_settings(), migrate=False)
    tokens = {username: start_session(ctx, username) for _, username, _, _ in payload["cases"]}
    try:
        with compiled_once():
            apps = {"hello": (hello_app(), False)}
            with empty_body():
                shell = signed_in_app(MEMBER, tokens[MEMBER], "app_pages/overview.py")
            apps["empty"] = (shell, False, empty_body)
            for name, username, page, fresh in payload["cases"]:
                apps[name] = (signed_in_app(username, tokens[username], page), fresh)
            interleaved(apps, payload["warmup"])
            timings = interleaved(apps, payload["repeats"])
    finally:
        for token in tokens.values():
            ctx.sessions.revoke(token)
        ctx.engine.dispose()
    return {"hello": timings.pop("hello"), "empty": timings.pop("empty"), "cases": timings}


if __name__ == "__main__":
    worker_main(measure)
