"""WidgetService: the website inboxes of a Chatwoot integration and the chat widget script for one of them."""

from __future__ import annotations

from dataclasses import dataclass

from core.audit import Actor
from core.chatwoot.client import Inbox
from core.chatwoot.helpdesk import HelpdeskService
from core.chatwoot.presets import check_widget_tier
from core.chatwoot.widget import WidgetSettings, build_script, widget_base_url
from core.errors import ValidationError
from core.ratelimit import Bucket


@dataclass(frozen=True)
class WidgetScript:
    """A generated script and what it was made from."""

    script: str
    base_url: str
    inbox: Inbox
    settings: WidgetSettings


class WidgetService:
    """The website inboxes of a Chatwoot integration and the script for one of them (STARTER and up).

    ``public_base_url`` is the CHATWOOT_WIDGET_BASE_URL setting: the address visitors' browsers load
    Chatwoot from, when the integration's own URL is not reachable from the internet.
    """

    def __init__(self, helpdesk: HelpdeskService, public_base_url: str | None = None):
        self._helpdesk = helpdesk
        self._public_base_url = public_base_url

    def website_inboxes(self, actor: Actor, integration_id: int) -> list[Inbox]:
        """The account's website inboxes (channel_type Channel::WebWidget) with their website tokens.

        Any member's token will do (an agent sees the inboxes it works in). Raises TierLimitError,
        HelpdeskUnavailable or HelpdeskError.
        """
        check_widget_tier(actor)
        inboxes = self._helpdesk.inboxes(actor, integration_id, require_admin=False)
        return [inbox for inbox in inboxes if inbox.is_website and inbox.website_token]

    def base_url(self, actor: Actor, integration_id: int) -> str:
        """BASE_URL for the script: the public widget host if configured, else the integration's URL."""
        check_widget_tier(actor)
        connection = self._helpdesk.connection(actor, integration_id, require_admin=False)
        return widget_base_url(connection.base_url, self._public_base_url)

    def script(self, actor: Actor, integration_id: int, inbox_id: int, settings: WidgetSettings) -> WidgetScript:
        """The script for one website inbox, its token read live from Chatwoot.

        Raises TierLimitError, HelpdeskUnavailable, HelpdeskError, ValidationError (settings, base URL,
        "inbox_id" when the inbox is not a website inbox of the account).
        """
        check_widget_tier(actor)
        settings.validate()
        self._helpdesk.count_attempt(Bucket("widget_script", str(actor.id)), "widget scripts generated")
        connection = self._helpdesk.connection(actor, integration_id, require_admin=False)
        inbox = next((i for i in self.website_inboxes(actor, integration_id) if i.id == inbox_id), None)
        if inbox is None or not inbox.website_token:
            raise ValidationError({"inbox_id": "Choose a website inbox of this Chatwoot account."})
        base = widget_base_url(connection.base_url, self._public_base_url)
        return WidgetScript(build_script(base, inbox.website_token, settings), base, inbox, settings)


__all__ = ["WidgetScript", "WidgetService"]
