"""`python -m bench.profiled_worker OUT.json --workers N`: `manage.py worker` with cProfile in every thread
(a consumer's jobs run in its worker threads, which cProfile does not see from the main one); when the
worker stops, the functions with the most cumulative time are written to OUT.json, the project's and the
libraries' apart, for the line that explains a missed worker target."""

from __future__ import annotations

import cProfile
import json
import pstats
import sys
import threading
from pathlib import Path

from bench.profile import project_path

SHOWN = 8


def top_functions(stats: pstats.Stats) -> dict[str, list[tuple[str, float, int]]]:
    """(where, cumulative seconds, calls) of the costliest functions, in the project and outside it."""
    project, libraries = [], []
    for (filename, line, function), (_cc, calls, _tt, cumulative, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        where = project_path(filename)
        if where is not None and not where.startswith((".venv/", "bench/")):
            project.append((f"{where}:{line} {function}", cumulative, calls))
        elif "threading.py" not in filename and "huey" not in filename and filename.startswith("/"):
            libraries.append((f"{Path(filename).name}:{line} {function}", cumulative, calls))
    return {
        "project": sorted(project, key=lambda item: -item[1])[:SHOWN],
        "libraries": sorted(libraries, key=lambda item: -item[1])[:SHOWN],
    }


def main() -> int:
    out = Path(sys.argv[1])
    profiles: list[cProfile.Profile] = []
    lock = threading.Lock()

    def start_in_thread(*_args):
        sys.setprofile(None)
        profile = cProfile.Profile()
        with lock:
            profiles.append(profile)
        profile.enable()

    threading.setprofile(start_in_thread)
    import manage

    try:
        return manage.main(["worker", *sys.argv[2:]])
    finally:
        threading.setprofile(None)  # type: ignore[arg-type]
        with lock:
            recorded = [p for p in profiles if p.getstats()]
        if recorded:
            stats = pstats.Stats(recorded[0])
            for profile in recorded[1:]:
                stats.add(profile)
            out.write_text(json.dumps(top_functions(stats)))


if __name__ == "__main__":
    sys.exit(main())
