"""Run every benchmark and report each figure against its target: `make bench` or `python -m bench`.

Each benchmark module has `figures(target, options) -> list[Figure]`: run once (scope "once", target
None), once per database on its largest dataset ("database"), or once per database with the datasets of
every size chosen by --sizes ("sizes": a list of targets, smallest first, for the cost growth). The
databases are SQLite under bench/.data and PostgreSQL (`bench`, or BENCH_PG_DATABASE) on 127.0.0.1 when
a server answers; a dataset is generated only when the database does not hold it already. One line per
figure as it is measured, then a Markdown table for the README and the machine it ran on.

Exit status 0 when everything was measured (targets met or not: this is a report), 1 when a benchmark
could not measure (ERROR), 2 on bad arguments, 130 when interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import json
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from bench import databases
from bench.common import DATA_DIR, ROOT, Figure, Options, failed, machine_description, markdown_table, skipped
from bench.generate import SIZES, Spec, parse_sizes


@dataclass(frozen=True)
class Benchmark:
    module: str
    scope: str  # "once", "database" (its largest dataset) or "sizes" (every dataset of the database)


# In this order: bench.check_all adds integrations of its own to the database, so it runs after the pages.
BENCHMARKS = (
    Benchmark("bench.crypto", "once"),
    Benchmark("bench.pages", "sizes"),
    Benchmark("bench.memory", "database"),
    Benchmark("bench.startup", "database"),
    Benchmark("bench.interaction", "database"),
    Benchmark("bench.check_all", "database"),
    Benchmark("bench.workers", "once"),
    Benchmark("bench.worker_memory", "once"),
)
DATABASES = ("sqlite", "postgresql")


def progress(message: str) -> None:
    print(f"· {message}", file=sys.stderr, flush=True)


def report(figure: Figure, figures: list[Figure]) -> None:
    figures.append(figure)
    print(figure.line(), flush=True)
    save(figures)  # as it goes: a run stopped half-way still leaves what it measured


def load(benchmark: Benchmark):
    """The module, or None when it is not written yet (any other import problem is raised)."""
    try:
        return importlib.import_module(benchmark.module)
    except ModuleNotFoundError as exc:
        if exc.name == benchmark.module:
            return None
        raise


def run_benchmark(benchmark: Benchmark, target, options: Options, database: str) -> list[Figure]:
    name = benchmark.module.removeprefix("bench.")
    path = benchmark.module.replace(".", "/") + ".py"
    try:
        module = load(benchmark)
        if module is None:
            return [skipped(name, database, None, f"{path} is not written yet")]
        progress(f"{name} on {database} …")
        return module.figures(target, options)
    except Exception as exc:
        return [failed(name, database, None, f"{type(exc).__name__}: {exc}")]


def targets(selected: list[str], sizes: list[str], figures: list[Figure]):
    """Each selected database with a target per size (smallest first), its datasets prepared; a SKIPPED or
    ERROR figure for one that is not."""
    for name in selected:
        label = "SQLite" if name == "sqlite" else "PostgreSQL"
        if name == "postgresql" and (problem := databases.postgres_problem()):
            report(skipped(f"Every {label} figure", label, None, problem), figures)
            continue
        try:
            yield [
                databases.prepared(label, databases.url_for(name, size), Spec.for_size(size), size, log=progress)
                for size in sizes
            ]
        except Exception as exc:
            report(failed(f"The {label} dataset", label, None, f"{type(exc).__name__}: {exc}"), figures)


def git_revision() -> str:
    try:
        done = subprocess.run(
            ["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True, text=True, timeout=10
        )
        return done.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def summary(figures: list[Figure], started: float) -> str:
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"{markdown_table(figures)}\n\n"
        f"Machine: {machine_description()}.  \n"
        f"Run: {when}, revision {git_revision()}, {time.perf_counter() - started:.0f} s in all."
    )


def save(figures: list[Figure]) -> None:
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    results = {"machine": machine_description(), "figures": [asdict(f) for f in figures]}
    (DATA_DIR / "latest.json").write_text(json.dumps(results, indent=2, default=str))


def parse(argv: list[str] | None) -> argparse.Namespace:
    defaults = Options()
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", help="comma-separated benchmarks, e.g. pages,crypto (default: all)")
    parser.add_argument("--databases", default=",".join(DATABASES), help="comma-separated: sqlite,postgresql")
    parser.add_argument(
        "--sizes", default=",".join(SIZES), help=f"dataset sizes, comma-separated from {','.join(SIZES)}"
    )
    parser.add_argument("--repeats", type=int, default=defaults.repeats, help="timed runs per case (medians)")
    parser.add_argument("--starts", type=int, default=defaults.starts, help="app starts per app")
    parser.add_argument("--processes", type=int, default=defaults.processes, help="processes per memory case")
    parser.add_argument("--timeout", type=float, default=defaults.timeout, help="seconds per worker process")
    parser.add_argument("--checks", type=int, default=defaults.checks, help="scheduled checks (workers)")
    parser.add_argument(
        "--worker-checks", type=int, default=defaults.worker_checks, help="checks the worker-memory figure runs"
    )
    parser.add_argument("--budget", type=float, default=3600, help="seconds for the whole run; the rest is skipped")
    parser.add_argument("--quick", action="store_true", help="few repetitions: to try the benchmarks out")
    args = parser.parse_args(argv)
    unknown = set(args.databases.split(",")) - set(DATABASES)
    if unknown:
        parser.error(f"unknown database(s) {', '.join(sorted(unknown))}; choose from {', '.join(DATABASES)}")
    try:
        args.sizes = parse_sizes(args.sizes)
    except ValueError as exc:
        parser.error(str(exc))
    if args.quick:
        args.repeats, args.starts, args.processes = 5, 2, 1
        args.checks, args.worker_checks = min(args.checks, 2_000), min(args.worker_checks, 10_000)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    options = Options(
        args.repeats, min(3, args.repeats), args.starts, args.processes, args.timeout, args.checks, args.worker_checks
    )
    chosen = [b for b in BENCHMARKS if not args.only or b.module.removeprefix("bench.") in args.only.split(",")]
    started, figures = time.perf_counter(), []
    print(f"Benchmarks on {machine_description()}", flush=True)

    def within_budget(name: str, database: str) -> bool:
        if time.perf_counter() - started < args.budget:
            return True
        report(skipped(name, database, None, f"the time budget of {args.budget:g} s is spent"), figures)
        return False

    try:
        once = [b for b in chosen if b.scope == "once"]
        for benchmark in once[:1]:  # crypto first: it needs no dataset
            if within_budget(benchmark.module, "–"):
                for figure in run_benchmark(benchmark, None, options, "–"):
                    report(figure, figures)
        per_database = [b for b in chosen if b.scope != "once"]
        if per_database:
            for sized in targets(args.databases.split(","), args.sizes, figures):
                for benchmark in per_database:
                    target = sized if benchmark.scope == "sizes" else sized[-1]
                    if within_budget(benchmark.module, sized[-1].database):
                        for figure in run_benchmark(benchmark, target, options, sized[-1].database):
                            report(figure, figures)
        for benchmark in once[1:]:
            if within_budget(benchmark.module, "–"):
                for figure in run_benchmark(benchmark, None, options, "–"):
                    report(figure, figures)
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        return 130
    print()
    print(summary(figures, started))
    save(figures)
    return 1 if any(f.status == "ERROR" for f in figures) else 0


if __name__ == "__main__":
    sys.exit(main())
