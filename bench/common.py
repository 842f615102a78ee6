"""What every benchmark shares: figures and how they are printed, the target database, worker processes,
and the machine description."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = ROOT / "bench" / ".data"  # git-ignored: the SQLite dataset, the benchmark keys, logs
RESULT_PREFIX = "BENCH-RESULT "  # the line a worker process answers on


class BenchError(Exception):
    """A benchmark could not measure (as opposed to measuring and missing its target)."""


@dataclass(frozen=True)
class Target:
    """The database a benchmark runs against, and the environment the app needs to use it."""

    database: str  # "SQLite" or "PostgreSQL"
    url: str
    env: dict[str, str]  # DATABASE_URL, the keys, CONSOLE_SECRETS_DIR: give it to every app process
    size: str = "100k"  # the dataset's size (bench.generate.SIZES)

    def as_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> Target:
        return cls(**data)


@dataclass(frozen=True)
class Options:
    repeats: int = 15  # timed runs per case (medians)
    warmup: int = 3
    starts: int = 5  # app starts per app (the start benchmark)
    processes: int = 3  # fresh processes per case (the memory benchmark)
    timeout: float = 900  # seconds any one worker process may take
    checks: int = 10_000  # scheduled checks of the workers benchmark
    worker_checks: int = 100_000  # checks the worker-memory benchmark runs


@dataclass
class Figure:
    """One measured figure: `value` compared with `limit` (a ratio, or a difference in `unit`)."""

    name: str
    database: str
    measured: str  # the raw figures behind the value, for people
    value: float | None
    limit: float | None  # the target; None for a line that stands for no figure (a skipped database)
    unit: str = "x"  # "x": a ratio; anything else: a difference in that unit ("MB")
    status: str = ""  # MET, MISSED, SKIPPED or ERROR; computed from value and limit when empty
    note: str = ""
    details: dict = field(default_factory=dict)
    at_least: bool = False  # the target is a floor (value >= limit), not a ceiling

    def __post_init__(self):
        if not self.status:
            met = (
                self.value is not None
                and self.limit is not None
                and (self.value >= self.limit if self.at_least else self.value <= self.limit)
            )
            self.status = "MET" if met else "MISSED"

    @property
    def shown_value(self) -> str:
        if self.value is None:
            return "–"
        return f"{self.value:.2f}x" if self.unit == "x" else f"{self.value:+.1f} {self.unit}"

    @property
    def shown_target(self) -> str:
        if self.limit is None:
            return "–"
        sign = "≥" if self.at_least else "≤"
        return f"{sign} {self.limit:g}x" if self.unit == "x" else f"{sign} {self.limit:+g} {self.unit}"

    def line(self) -> str:
        text = f"{self.name:<44} {self.database:<10} {self.measured:<56} {self.shown_value:>9}"
        text += f"  target {self.shown_target:<9}  {self.status}"
        return text + (f"  ({self.note})" if self.note else "")


def skipped(name: str, database: str, limit: float | None, reason: str, unit: str = "x") -> Figure:
    return Figure(name, database, "", None, limit, unit, status="SKIPPED", note=reason)


def failed(name: str, database: str, limit: float | None, reason: str, unit: str = "x") -> Figure:
    return Figure(name, database, "", None, limit, unit, status="ERROR", note=reason)


def ratio_figure(name: str, database: str, measured: float, baseline: float, limit: float, what: str) -> Figure:
    """A figure for `measured / baseline` (seconds), printed in milliseconds."""
    return Figure(
        name,
        database,
        f"{what} {measured * 1000:.1f} ms vs {baseline * 1000:.1f} ms",
        measured / baseline,
        limit,
        details={"measured_s": measured, "baseline_s": baseline},
    )


def median(values: list[float]) -> float:
    return statistics.median(values)


def markdown_table(figures: list[Figure]) -> str:
    rows = [
        "| Figure | Database | Measured | Result | Target | Status |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for f in figures:
        measured = f.measured or f.note
        rows.append(f"| {f.name} | {f.database} | {measured} | {f.shown_value} | {f.shown_target} | {f.status} |")
    return "\n".join(rows)


# ----- the machine ----------------------------------------------------------------------------------


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _ram_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    return None


def machine_description() -> str:
    ram = _ram_gib()
    ram_text = f"{ram:.1f} GiB RAM" if ram else "RAM unknown"
    return (
        f"{_cpu_model()}, {os.cpu_count()} cores, {ram_text}, Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}"
    )


# ----- worker processes -----------------------------------------------------------------------------


def run_worker(module: str, payload: dict, timeout: float, env: dict[str, str] | None = None) -> dict:
    """Run `python -m module <payload JSON>` in a fresh process; its answer is a JSON result line.

    A fresh process per measurement keeps caches, imports and peak memory of one case out of another.
    """
    command = [sys.executable, "-m", module, json.dumps(payload)]
    try:
        done = subprocess.run(
            command,
            cwd=ROOT,
            env={**os.environ, **(env or {}), "PYTHONPATH": str(ROOT)},
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"{module} took longer than {timeout:g} s") from exc
    for line in reversed(done.stdout.splitlines()):
        if line.startswith(RESULT_PREFIX):
            answer = json.loads(line[len(RESULT_PREFIX) :])
            if "error" in answer:
                raise BenchError(f"{module}: {answer['error']}")
            return answer
    tail = "\n".join(done.stderr.strip().splitlines()[-15:])
    raise BenchError(f"{module} exited with {done.returncode} without a result:\n{tail}")


def worker_main(measure: Callable[[dict], dict]) -> None:
    """The worker side of run_worker: measure(payload) and print its JSON answer (or the error)."""
    payload = json.loads(sys.argv[1])
    try:
        answer = measure(payload)
    except Exception as exc:
        traceback.print_exc()
        answer = {"error": f"{type(exc).__name__}: {exc}"}
    sys.stdout.flush()
    print(RESULT_PREFIX + json.dumps(answer), flush=True)
