"""`manage.py statistics ...`: rebuild, verify and fold the statistics ledgers (core.integrations.ledgers)."""

from __future__ import annotations

import argparse
import json
import time

from core.integrations import ledgers
from core.words import count

EXIT_OK, EXIT_FAILED = 0, 1


def register(commands: argparse._SubParsersAction, command, group, add_json, open_context) -> None:
    stats = group(
        commands,
        "statistics",
        "the counts Statistics and Overview read",
        "The database keeps the statistics ledgers on every write (triggers of migration 0018). These commands\n"
        "recount them from every row (after a restore or a bulk load that bypassed the triggers), compare them\n"
        "with a recount, or fold their rows (the engine does that on its own every few minutes).",
    )

    def cmd_rebuild(args) -> int:
        engine = open_context().engine
        started = time.monotonic()
        with engine.begin() as conn:  # one transaction: readers see the old ledgers or the new, never half
            written = ledgers.rebuild(conn)
        seconds = time.monotonic() - started
        if args.json:
            print(json.dumps({"rows": written, "seconds": round(seconds, 3)}, indent=2))
        else:
            rows = ", ".join(f"{table} {n:,} rows" for table, n in written.items())
            print(f"Recounted the statistics ledgers from every row in {seconds:.1f} s: {rows}.")
        return EXIT_OK

    def cmd_verify(args) -> int:
        with open_context().engine.connect() as conn:
            lines = ledgers.differences(conn)
        if args.json:
            print(json.dumps({"differences": lines}, indent=2))
        elif lines:
            print("\n".join(lines))
            print(
                f"{count(len(lines), 'difference')} between the ledgers and a full recount. "
                "Run `python manage.py statistics rebuild` to recount them."
            )
        else:
            print("The statistics ledgers agree with a full recount.")
        return EXIT_FAILED if lines else EXIT_OK

    def cmd_compact(args) -> int:
        with open_context().engine.begin() as conn:
            left = ledgers.compact(conn)
        if args.json:
            print(json.dumps({"rows": left}, indent=2))
        else:
            print("Folded the statistics ledgers: " + ", ".join(f"{t} {n:,} rows" for t, n in left.items()) + ".")
        return EXIT_OK

    for name, func, summary in (
        ("rebuild", cmd_rebuild, "recount every ledger from the integrations, owners and audit events"),
        ("verify", cmd_verify, "compare the ledgers with a full recount; print each difference (exit 1 if any)"),
        ("compact", cmd_compact, "fold each ledger's rows into one per key"),
    ):
        add_json(command(stats, name, func, summary))
