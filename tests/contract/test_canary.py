"""A canary secret taken through every path appears nowhere but as ciphertext in the database."""

from __future__ import annotations

import json
import logging

from sqlalchemy import inspect, text

from core import audit
from core.integrations import exports

CANARY = "canary-Zq8-secret-7f3a9"


def everything_in_the_database(ctx) -> str:
    dump = []
    with ctx.engine.connect() as connection:
        for table in inspect(connection).get_table_names():
            dump += [repr(tuple(row)) for row in connection.execute(text(f"SELECT * FROM {table}"))]
    return "\n".join(dump)


def test_a_canary_secret_leaks_nowhere(ctx, member, httpserver, caplog, capsys):
    def echo(request):
        from werkzeug import Response

        # A hostile or careless CRM that repeats the credential it received in its error answer.
        said = json.dumps({"error": "bad token", "you_sent": request.headers.get("Authorization")})
        return Response(said, status=401, content_type="application/json")

    httpserver.expect_request("/health").respond_with_handler(echo)
    caplog.set_level(logging.DEBUG)
    config = {
        "name": "Canary CRM",
        "apiEndpoint": httpserver.url_for("/"),
        "authType": "BEARER",
        "healthPath": "/health",
        "credentials": json.dumps({"token": CANARY}),
    }
    outputs = []
    outputs.append(ctx.integrations.test_configuration(member, "CUSTOM", config))  # before saving
    view = ctx.integrations.create(member, "Canary CRM", "CUSTOM", config)  # create
    outputs.append(view)
    outputs.append(ctx.integrations.test(member, view.id))  # failed test of the saved one
    edited = {**config, "credentials": json.dumps({"token": CANARY + "-2"})}
    outputs.append(ctx.integrations.update(member, view.id, view.version, configuration=edited))  # edit
    outputs.append(ctx.integrations.test(member, view.id))
    outputs.append(ctx.integrations.list_integrations(member))
    outputs.append(
        exports.export_csv(ctx.integrations.list_integrations(member))
        + exports.export_json(ctx.integrations.list_integrations(member))
    )
    outputs.append(audit.to_csv(audit.search(ctx.factory, member)))

    assert not outputs[2].success and "refused the credentials" in outputs[2].message
    assert len(httpserver.log) == 3 and all(CANARY in r.headers["Authorization"] for r, _ in httpserver.log)
    for output in outputs:
        assert CANARY not in repr(output)
    assert CANARY not in caplog.text
    captured = capsys.readouterr()
    assert CANARY not in captured.out + captured.err
    stored = everything_in_the_database(ctx)
    assert CANARY not in stored and "enc:v2:" in stored
