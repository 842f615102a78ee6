"""Chatwoot: a helpdesk whose Application API is reached with a user's access token."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from core.catalog import Provider, TestContext
from core.chatwoot.client import ChatwootClient, ChatwootError
from core.fields import FieldSpec
from core.results import TestResult

FIELDS = (
    FieldSpec(
        "baseUrl",
        "Chatwoot Base URL",
        "url",
        required=True,
        pattern=r"https?://.+",
        placeholder="https://app.chatwoot.com",
        help="The address of your Chatwoot server, or paste a Chatwoot page's address (it fills the account ID too).",
    ),
    FieldSpec(
        "accountId",
        "Account ID",
        "text",
        required=True,
        pattern=r"[1-9][0-9]{0,9}",
        pattern_message="The account ID is the number after /accounts/ in Chatwoot's address bar.",
        placeholder="1",
        help="Shown in Chatwoot's address bar: /app/accounts/<ID>/dashboard.",
    ),
    FieldSpec(
        "apiKey",
        "API Access Token",
        "password",
        required=True,
        min_length=10,
        sensitive=True,
        help="Profile settings > Access token. An administrator's token is needed for helpdesk work.",
    ),
    FieldSpec(
        "platformToken",
        "Platform App Token",
        "password",
        min_length=10,
        sensitive=True,
        help=(
            "Optional. A Platform App's token (Chatwoot Super Admin console > Platform Apps) lets the console "
            "set new agents' passwords. Without it, Chatwoot e-mails each new agent a link to set a password."
        ),
    ),
    FieldSpec("features.autoCreateInboxes", "Auto-create inboxes", "checkbox", default=True),
    FieldSpec("features.autoCreateBots", "Auto-create bots", "checkbox", default=True),
    FieldSpec("features.syncContacts", "Sync contacts", "checkbox", default=True),
)


# Chatwoot's address bar: <base>/app/accounts/<id>/... (or /app/login): what comes before /app is the base URL.
_APP_PATH = re.compile(r"(?P<base>.*?)/app(?:/accounts/(?P<account>[0-9]+))?(?:/.*)?")


def normalise(config: dict) -> dict:
    """A pasted Chatwoot page address in the base URL becomes the base URL, and gives the account ID when that is
    empty or the same (a different one typed is kept, and the test then says which accounts the token reaches)."""
    url = config.get("baseUrl")
    if not isinstance(url, str):
        return config
    parts = urlsplit(url.strip())
    match = _APP_PATH.fullmatch(parts.path)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc or match is None:
        return config
    config["baseUrl"] = f"{parts.scheme}://{parts.netloc}{match['base']}"
    typed = config.get("accountId")
    account = match["account"]
    if account and (typed is None or (isinstance(typed, str | int) and str(typed).strip() in ("", account))):
        config["accountId"] = account
    return config


def test_connection(config: dict, context: TestContext) -> TestResult:
    session = context.http
    account_id = int(config["accountId"])
    client = ChatwootClient(config["baseUrl"], config["apiKey"], session)
    try:
        profile = client.profile()
    except ChatwootError as exc:
        return TestResult(False, str(exc), error=str(exc))
    access = profile.access_to(account_id)
    if access is None:
        listed = ", ".join(str(a.account_id) for a in profile.accounts) or "none"
        message = (
            f"The token works, but its user ({profile.email}) is not a member of account {account_id}. "
            f"Accounts this token can reach: {listed}."
        )
        return TestResult(False, message, error=message)
    features = [name.split(".")[-1] for name, on in _features(config).items() if on]
    details = {
        "accountInfo": {
            "id": access.account_id,
            "name": access.account_name,
            "role": access.role,
            "user": profile.name,
            "email": profile.email,
        },
        "features": features,
        "limited": not access.is_administrator,
    }
    if access.is_administrator:
        message = f"Connected to {access.account_name} as {profile.name}, an administrator."
    else:
        message = (
            f"Connected to {access.account_name} as {profile.name}, but with the role '{access.role}': "
            "the helpdesk features (agents, inboxes) need an administrator's token."
        )
    return TestResult(True, message, details)


def _features(config: dict) -> dict:
    feats = config.get("features") or {}
    return {f"features.{k}": bool(v) for k, v in feats.items()}


PROVIDER = Provider(
    key="CHATWOOT",
    name="Chatwoot",
    description="Open-source customer engagement: conversations, contacts and inboxes.",
    category="CRM",
    fields=FIELDS,
    test=test_connection,
    normalise=normalise,
    docs_url="https://developers.chatwoot.com/api-reference/introduction",
)
