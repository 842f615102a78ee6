"""manage.py syncs: contact syncs between a CRM and Chatwoot (core/sync), from the command line."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from dataclasses import asdict


def register(commands: argparse._SubParsersAction, command, group, add_as, add_json, open_context, actor) -> None:
    syncs = group(commands, "syncs", "contact syncs between a CRM and Chatwoot", "List, create and run contact syncs.")

    def as_of(args):
        context = open_context()
        return context, actor(context, args.as_user)

    def out(args, data, text: Callable[[], str]) -> int:
        print(json.dumps(data, default=str, indent=2) if args.json else text())
        return 0

    def cmd_list(args) -> int:
        context, who = as_of(args)
        views = context.syncs.list(who)
        rows = [
            f"#{v.id} {v.crm_name} <-> {v.chatwoot_name} ({v.direction_label}, {v.crm_object_label.lower()}); last: "
            f"{v.last_run.status + ' ' + v.last_run.message if v.last_run else 'never run'}"
            for v in views
        ]
        return out(args, [asdict(v) for v in views], lambda: "\n".join(rows) or "No contact syncs.")

    def cmd_create(args) -> int:
        context, who = as_of(args)
        view = context.syncs.create(who, args.crm, args.chatwoot, args.direction, args.crm_object)
        text = f"Created sync #{view.id} ({view.direction_label}, {view.crm_object_label.lower()})."
        return out(args, asdict(view), lambda: text)

    def cmd_run(args) -> int:
        context, who = as_of(args)
        run = context.syncs.run_now(who, args.id, "cli")
        return out(args, asdict(run), lambda: f"{run.status}: {run.message}")

    def cmd_dry(args) -> int:
        context, who = as_of(args)
        report = context.syncs.dry_run(who, args.id, args.limit)
        lines = [f"{p['action']} in {p['in']}: {p['name']} {p['email'] or p['phone'] or ''}" for p in report.preview]
        return out(args, report.as_dict(), lambda: "\n".join(lines) or "Nothing would change.")

    def cmd_report(args) -> int:
        context, who = as_of(args)
        runs = context.syncs.reports(who, args.id, args.limit)
        return out(
            args,
            [asdict(r) for r in runs],
            lambda: (
                "\n".join(f"{r.started_at:%Y-%m-%d %H:%M} {r.trigger} {r.status}: {r.message}" for r in runs)
                or "No runs yet."
            ),
        )

    for name, func, summary in (
        ("list", cmd_list, "list contact syncs and their last run"),
        ("create", cmd_create, "create a sync between a CRM integration and a Chatwoot integration"),
        ("run", cmd_run, "run a sync now and print its report"),
        ("dry-run", cmd_dry, "preview the first changes a run would make; nothing is written"),
        ("report", cmd_report, "the last runs of a sync"),
    ):
        parser = command(syncs, name, func, summary)
        if name == "create":
            parser.add_argument("--crm", type=int, required=True, metavar="ID", help="the CRM integration")
            parser.add_argument("--chatwoot", type=int, required=True, metavar="ID", help="the Chatwoot integration")
            parser.add_argument("--direction", choices=["crm_to_chatwoot", "chatwoot_to_crm", "both"], default="both")
            parser.add_argument(
                "--crm-object",
                choices=["contacts", "leads"],
                default="contacts",
                help="the CRM records to sync: contacts, or leads (Pipedrive, Salesforce and Zoho CRM only; "
                "in Pipedrive a person with a lead)",
            )
        elif name != "list":
            parser.add_argument("id", type=int, help="the sync's id")
        if name in ("dry-run", "report"):
            parser.add_argument("--limit", type=int, default=20, metavar="N")
        add_as(parser)
        add_json(parser)
