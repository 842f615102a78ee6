"""InboxService: website inboxes the console creates in a customer's Chatwoot, with the integration's
"Auto-create inboxes" toggle on (and, with "Auto-create bots" on, the greeting bot attached to them).

ensure_website_inbox looks for a website inbox of the same site first (core.chatwoot.bot_api.normalise_site:
scheme, host, default port and trailing slash do not count), so asking twice makes one inbox. Two requests
at once (a double click, two tabs, two app processes) cannot both create one: the look-up and the creation
run under a named lease per integration and site (core.chatwoot.leases); the second waits for the first,
then finds its inbox. With the toggle off it refuses with a sentence
and calls nothing. Every outcome is audited as "chatwoot.inbox_ensure".
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from urllib.parse import urlsplit

from sqlalchemy.orm import sessionmaker

from core import audit
from core.audit import Actor
from core.chatwoot import bot_api, leases
from core.chatwoot.bots import BotService
from core.chatwoot.client import ChatwootClient, ChatwootError, Inbox
from core.chatwoot.helpdesk import HelpdeskConnection, HelpdeskError, HelpdeskService
from core.errors import ValidationError
from core.ratelimit import Bucket

INBOXES_OFF = (
    "The integration's Auto-create inboxes toggle is off, so the console creates no inbox in this Chatwoot "
    "account. Switch it on (Edit on the Integrations page), or add the inbox in Chatwoot under Settings > "
    "Inboxes > Add inbox > Website."
)
BUSY = (
    "Another request is creating the website inbox for this site right now. Wait a moment and try again: "
    "it will be found, not created twice."
)
_COLOUR = re.compile(r"#[0-9a-fA-F]{6}")


def check_inbox_fields(website_url: str, colour: str, title: str, tagline: str) -> str:
    """The website address as given (trimmed); ValidationError naming each field that is wrong."""
    problems: dict[str, str] = {}
    url = (website_url or "").strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or not bot_api.normalise_site(url):
        problems["website_url"] = "Give the website's address, such as https://www.example.com."
    elif len(url) > 500:
        problems["website_url"] = "Keep the website's address within 500 characters."
    if not _COLOUR.fullmatch(colour or ""):
        problems["colour"] = "Give the widget colour as #RRGGBB, such as #1F93FF."
    if len(title or "") > 255:
        problems["title"] = "Keep the welcome title within 255 characters."
    if len(tagline or "") > 255:
        problems["tagline"] = "Keep the tagline within 255 characters."
    if problems:
        raise ValidationError(problems)
    return url


def lease_name(integration_id: int, site: str) -> str:
    """The lease of one integration's inbox for one site (a hash: a site may be longer than the name)."""
    digest = hashlib.sha256(site.encode("utf-8")).hexdigest()[:24]
    return f"inbox:{int(integration_id)}:{digest}"


class InboxService:
    def __init__(self, helpdesk: HelpdeskService, bots: BotService, factory: sessionmaker):
        self._helpdesk = helpdesk
        self._bots = bots
        self._factory = factory

    def auto_create_allowed(self, actor: Actor, integration_id: int) -> tuple[bool, str | None]:
        """Whether the console may create inboxes through this integration, and why not (no remote call)."""
        inboxes_on, _ = self._bots.toggles(actor, integration_id)
        return (True, None) if inboxes_on else (False, INBOXES_OFF)

    def ensure_website_inbox(
        self, actor: Actor, integration_id: int, website_url: str, colour: str, title: str, tagline: str
    ) -> tuple[Inbox, bool]:
        """The account's website inbox for ``website_url``, created now (True) or found (False).

        Needs an administrator's token. Raises ValidationError, HelpdeskUnavailable or HelpdeskError
        (reason "feature_off" when the toggle is off). A created inbox gets the greeting bot when the
        "Auto-create bots" toggle is on; if that fails the inbox stays, the bot's status says why.
        """
        url = check_inbox_fields(website_url, colour, title, tagline)
        site = bot_api.normalise_site(url)
        details = {"website_url": url}

        def record(outcome: str, **extra) -> None:
            audit.record_now(
                self._factory,
                actor,
                "chatwoot.inbox_ensure",
                outcome,
                integration_id=integration_id,
                details={**details, **extra},
            )

        with self._helpdesk.open(actor, integration_id) as (connection, client):
            if not connection.auto_create_inboxes:
                record("denied", reason="feature_off")
                raise HelpdeskError(INBOXES_OFF, "feature_off")
            with leases.held(self._factory, lease_name(integration_id, site), BUSY):
                return self._find_or_create(actor, connection, client, url, site, colour, title, tagline, record)

    def _find_or_create(
        self,
        actor: Actor,
        connection: HelpdeskConnection,
        client: ChatwootClient,
        url: str,
        site: str,
        colour: str,
        title: str,
        tagline: str,
        record: Callable[..., None],
    ) -> tuple[Inbox, bool]:
        """The look-up, then the creation when none fits (under the site's lease)."""
        integration_id = connection.integration_id
        try:
            inboxes = client.list_inboxes()
        except ChatwootError as exc:
            record("failure", message=str(exc))
            raise HelpdeskError(str(exc), exc.reason) from None
        found = next((i for i in inboxes if i.is_website and bot_api.normalise_site(i.website_url) == site), None)
        if found is not None:
            record("success", created=False, inbox_id=found.id)
            return found, False
        self._helpdesk.count_attempt(Bucket("chatwoot_create", str(actor.id)), "bots and inboxes created")
        name = (urlsplit(url).hostname or url)[:100]
        try:
            inbox = bot_api.create_website_inbox(client, name, url, colour.upper(), title.strip(), tagline.strip())
        except ChatwootError as exc:
            record("failure", message=str(exc))
            raise HelpdeskError(f"Chatwoot did not create the inbox: {exc}", exc.reason) from None
        record("success", created=True, inbox_id=inbox.id)
        if connection.auto_create_bots:
            try:
                self._bots.attach(actor, connection, client, inbox.id)
            except HelpdeskError as exc:
                self._bots.note_error(integration_id, str(exc))
        return inbox, True


__all__ = ["BUSY", "INBOXES_OFF", "InboxService", "check_inbox_fields", "lease_name"]
