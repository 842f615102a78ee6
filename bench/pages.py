"""Page renders in Streamlit's AppTest against the app's empty page, at every dataset size: median ratios,
and how each page's cost grows from the smallest dataset to the largest.

One worker process per database and size: it signs in (see bench/apptest.py), renders every page once to
warm up, then times `AppTest.run()` of the hello page, the app's empty page and each app page,
interleaved (the order rotates each round), and answers with every timing, then renders each page once
more under the profiler (bench/profile.py) for the line that explains a missed target. The ratio is the
median page render over the median empty-page render of the same process; the growth is a page's median
at the largest size over its median at the smallest.
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

GROWTH_LIMIT = 1.2
INTEGRATION_PAGE = "app_pages/integration.py"


@dataclass(frozen=True)
class PageCase:
    name: str
    username: str
    page: str  # relative to Home.py
    limit: float | None  # against the app's empty page, at the largest size; None: only its growth counts
    fresh: bool = False  # empty st.cache_data before each render (the page's Refresh), so it reads the database
    growth: bool = True  # a cost-growth figure for it


CASES = (
    PageCase("Integrations page, member with 200", MEMBER, "app_pages/integrations.py", 2.0),
    PageCase("Integrations page, admin, all", ADMIN, "app_pages/integrations.py", None),
    PageCase("Overview page, member with 200", MEMBER, "app_pages/overview.py", 1.5),
    PageCase("Overview page, admin, all", ADMIN, "app_pages/overview.py", None),
    PageCase("Statistics page, admin, all, fresh", ADMIN, "app_pages/statistics.py", 3.0, fresh=True),
    PageCase("Statistics page, admin, all, cached", ADMIN, "app_pages/statistics.py", 2.0, growth=False),
    PageCase("Integration detail page, member's", MEMBER, INTEGRATION_PAGE, None),
)


def figures(targets: list[Target], options: Options) -> list[Figure]:
    """The ratios at the largest size, then each page's growth from the smallest size to the largest."""
    database = targets[-1].database
    present = [case for case in CASES if (ROOT / case.page).is_file()]
    absent = {case.name: f"{case.page} does not exist yet" for case in CASES if case not in present}
    answers: dict[str, dict] = {}
    problems: dict[str, str] = {}
    payload = {
        "cases": [(c.name, c.username, c.page, c.fresh) for c in present],
        "repeats": options.repeats,
        "warmup": options.warmup,
    }
    for target in visiting_order(targets):
        if target.size in problems:
            continue
        try:
            answer = run_worker("bench.pages", payload, options.timeout, target.env)
        except Exception as exc:
            problems[target.size] = str(exc)
            continue
        answers[target.size] = pooled(answers[target.size], answer) if target.size in answers else answer
    largest, smallest = targets[-1].size, targets[0].size
    result = [ratio_at(case, database, largest, answers, problems, absent) for case in CASES if case.limit is not None]
    if len(targets) > 1:
        grown = [case for case in CASES if case.growth]
        result += [growth(case, database, smallest, largest, answers, problems, absent) for case in grown]
    return result


def visiting_order(targets: list[Target]) -> list[Target]:
    """The smallest and the largest size, then the two again in reverse (10k, 1m, 1m, 10k): a machine
    getting faster or slower during the run (a neighbour's load, caches warming) then weighs on both alike,
    and the growth figures compare the sizes, not the moments they were measured at. The sizes between are
    in no figure."""
    if len(targets) < 2:
        return targets
    return [targets[0], targets[-1], targets[-1], targets[0]]


def pooled(first: dict, second: dict) -> dict:
    """Two workers' answers for one size as one: every timing of both; the profiles of the later."""
    return {
        "hello": first["hello"] + second["hello"],
        "empty": first["empty"] + second["empty"],
        "cases": {name: first["cases"].get(name, []) + times for name, times in second["cases"].items()},
        "profiles": second["profiles"],
    }


def ratio_at(case: PageCase, database: str, size: str, answers: dict, problems: dict, absent: dict) -> Figure:
    name = f"{case.name}, {size}"
    if case.name in absent:
        return skipped(name, database, case.limit, absent[case.name])
    if size in problems:
        return failed(name, database, case.limit, problems[size])
    answer = answers[size]
    empty, hello = median(answer["empty"]), median(answer["hello"])
    page = median(answer["cases"][case.name])
    assert case.limit is not None
    figure = ratio_figure(name, database, page, empty, case.limit, "median render")
    figure.measured += f" (the app's empty page); {page / hello:.1f}x a bare hello script ({hello * 1000:.1f} ms)"
    figure.details.update(hello_s=hello, profile=answer["profiles"].get(case.name, {}))
    if figure.status == "MISSED":
        figure.note = profile_note(answer["profiles"].get(case.name, {}))
    return figure


def growth(
    case: PageCase, database: str, smallest: str, largest: str, answers: dict, problems: dict, absent: dict
) -> Figure:
    name = f"Cost growth {smallest}→{largest}, {case.name.split(',')[0].removesuffix(' page')}"
    name += case_qualifier(case)
    if case.name in absent:
        return skipped(name, database, GROWTH_LIMIT, absent[case.name])
    for size in (smallest, largest):
        if size in problems:
            return failed(name, database, GROWTH_LIMIT, f"at {size}: {problems[size]}")
    small = median(answers[smallest]["cases"][case.name])
    large = median(answers[largest]["cases"][case.name])
    figure = Figure(
        name,
        database,
        f"median render {large * 1000:.1f} ms at {largest} vs {small * 1000:.1f} ms at {smallest}",
        large / small,
        GROWTH_LIMIT,
        details={"large_s": large, "small_s": small, "profile": answers[largest]["profiles"].get(case.name, {})},
    )
    if figure.status == "MISSED":
        figure.note = profile_note(answers[largest]["profiles"].get(case.name, {}))
    return figure


def case_qualifier(case: PageCase) -> str:
    who = "member" if case.username == MEMBER else "admin"
    return f", {who}" + (", fresh" if case.fresh else "")


def profile_note(profile: dict) -> str:
    """The profile lines that explain a missed target: the project's costliest function, the costliest SQL."""
    parts = []
    if profile.get("function"):
        parts.append(f"profile: {profile['function']}")
    if profile.get("sql"):
        parts.append(f"costliest SQL: {profile['sql']}")
    return "; ".join(parts) or "no profile"


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


def members_integration(ctx) -> int:
    """The id of one of bench_member's integrations (the newest), for the detail page."""
    from sqlalchemy import func, select

    from core.models import Integration, User

    with ctx.factory() as session:
        found = session.scalar(
            select(func.max(Integration.id)).join(User, Integration.owner_id == User.id).where(User.username == MEMBER)
        )
    if found is None:
        raise RuntimeError("bench_member owns no integration")
    return found


def measure(payload: dict) -> dict:
    import app_context
    from bench.apptest import compiled_once, empty_body, hello_app, signed_in, signed_in_app, start_session
    from bench.profile import profiled
    from core.settings import load_settings

    ctx = app_context.build(load_settings(), migrate=False)
    tokens = {username: start_session(ctx, username) for _, username, _, _ in payload["cases"]}
    detail_id = members_integration(ctx)
    try:
        with compiled_once():
            apps = {"hello": (hello_app(), False)}
            with empty_body():
                shell = signed_in_app(MEMBER, tokens[MEMBER], "app_pages/overview.py")
            apps["empty"] = (shell, False, empty_body)
            for name, username, page, fresh in payload["cases"]:
                if page == INTEGRATION_PAGE:
                    at = signed_in(username, tokens[username], page)
                    at.query_params["id"] = str(detail_id)
                    apps[name] = (checked_page(at.run(), page), fresh)
                else:
                    apps[name] = (signed_in_app(username, tokens[username], page), fresh)
            interleaved(apps, payload["warmup"])
            timings = interleaved(apps, payload["repeats"])
            profiles = {}
            for name, *_ in payload["cases"]:
                at, fresh = apps[name][0], apps[name][1]
                with profiled() as profile:
                    timed_run(at, fresh)
                profiles[name] = profile.summary()
    finally:
        for token in tokens.values():
            ctx.sessions.revoke(token)
        ctx.engine.dispose()
    return {"hello": timings.pop("hello"), "empty": timings.pop("empty"), "cases": timings, "profiles": profiles}


def checked_page(at, page: str):
    from bench.apptest import checked, on_page

    return on_page(checked(at, page), page)


if __name__ == "__main__":
    worker_main(measure)
