"""`manage.py syncs create` as a subprocess: a sync of a CRM's leads, and leads refused, with a sentence,
for a CRM that has none."""

from __future__ import annotations

import json

import pytest

from tests.unit.test_cli import Cli


@pytest.fixture(scope="module")
def cli(tmp_path_factory) -> Cli:
    cli = Cli(tmp_path_factory.mktemp("syncs-cli"))
    assert cli("db", "upgrade").returncode == 0
    return cli


def add(cli: Cli, name: str, provider: str, config: dict) -> int:
    done = cli("integrations", "add", "--name", name, "--provider", provider, "--json", stdin=json.dumps(config))
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["id"]


def test_a_sync_of_leads_is_created_and_leads_are_refused_where_the_crm_has_none(cli):
    desk = add(cli, "Desk", "CHATWOOT", {"baseUrl": "http://127.0.0.1:9", "accountId": "7", "apiKey": "cw-" + "k" * 24})
    crm = add(cli, "Pipes", "PIPEDRIVE", {"companyDomain": "acme", "apiToken": "9f8e7d6c5b4a39281706f5e4d3c2b1a0"})
    hub = add(cli, "Hub", "HUBSPOT", {"accessToken": "pat-na1-" + "0" * 36})
    made = cli("syncs", "create", "--crm", str(crm), "--chatwoot", str(desk), "--crm-object", "leads")
    assert made.returncode == 0, made.stderr
    assert made.stdout.strip().endswith("(Both ways, leads).")
    listed = json.loads(cli("syncs", "list", "--json").stdout)
    assert [(s["crm_integration_id"], s["crm_object"]) for s in listed] == [(crm, "leads")]
    refused = cli("syncs", "create", "--crm", str(hub), "--chatwoot", str(desk), "--crm-object", "leads")
    assert refused.returncode != 0 and "HubSpot has no leads" in refused.stderr
