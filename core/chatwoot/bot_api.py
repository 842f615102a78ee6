"""The Chatwoot calls of auto-created inboxes and the greeting bot, on a ChatwootClient.

- create_website_inbox: POST .../inboxes/ with a web_widget channel (an administrator's token);
- list_agent_bots, create_agent_bot, set_agent_bot: the account's agent bots (an administrator's token);
- send_message, open_conversation: what the bot does, on a client made with the BOT's access token.

Chatwoot answers an agent bot's creation with its access token: create_agent_bot returns it beside the
bot and nothing else here keeps, logs or shows it. Every request goes through the client's session
(core.http: deadline, address guard); a POST is never retried.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from core.chatwoot.client import ChatwootClient, ChatwootError, Inbox, parse_inbox

BAD_RESPONSE = "bad_response"


@dataclass(frozen=True)
class AgentBot:
    """An agent bot of the account (its access token is deliberately not part of it)."""

    id: int
    name: str
    outgoing_url: str


def normalise_site(url: str | None) -> str:
    """A website address as one comparable string: scheme and host lower-cased, default port, path without
    its trailing slash; http and https count as the same site. "" for anything that is not a web address."""
    text = (url or "").strip()
    if not text:
        return ""
    if "://" not in text:
        text = "https://" + text
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        return ""
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return ""
    host = parts.hostname.lower().rstrip(".")
    if host.startswith("www."):
        host = host[4:]
    if port is not None and port not in (80, 443):
        host = f"{host}:{port}"
    path = parts.path.rstrip("/")
    return host + path


def _shape(what: str) -> ChatwootError:
    return ChatwootError(
        f"Chatwoot's answer ({what}) was not in the expected shape. Is the base URL a Chatwoot server?",
        reason=BAD_RESPONSE,
    )


def _bot(item: Any) -> AgentBot:
    if not isinstance(item, dict) or not isinstance(item.get("id"), int | float) or isinstance(item.get("id"), bool):
        raise _shape("an agent bot")
    return AgentBot(int(item["id"]), str(item.get("name") or ""), str(item.get("outgoing_url") or ""))


def create_website_inbox(
    client: ChatwootClient, name: str, website_url: str, colour: str, title: str, tagline: str
) -> Inbox:
    """POST .../inboxes/ (the path as Chatwoot's description spells it) with channel type web_widget."""
    channel = {
        "type": "web_widget",
        "website_url": website_url,
        "widget_color": colour,
        "welcome_title": title,
        "welcome_tagline": tagline,
    }
    answer = client.call("POST", client.account_path() + "/inboxes/", body={"name": name, "channel": channel})
    return parse_inbox(answer)


def list_agent_bots(client: ChatwootClient) -> list[AgentBot]:
    """GET .../agent_bots: the account's own agent bots."""
    answer = client.call("GET", client.account_path() + "/agent_bots")
    if not isinstance(answer, list):
        raise _shape("a list of agent bots")
    return [_bot(item) for item in answer]


def create_agent_bot(client: ChatwootClient, name: str, description: str, outgoing_url: str) -> tuple[AgentBot, str]:
    """POST .../agent_bots; the bot and its access token ("" when Chatwoot sent none)."""
    body = {"name": name, "description": description, "outgoing_url": outgoing_url}
    answer = client.call("POST", client.account_path() + "/agent_bots", body=body)
    bot = _bot(answer)
    token = answer.get("access_token") if isinstance(answer, dict) else None
    return bot, token if isinstance(token, str) else ""


def set_agent_bot(client: ChatwootClient, inbox_id: int, bot_id: int) -> None:
    """POST .../inboxes/{id}/set_agent_bot: the bot answers the inbox's conversations (204, no body)."""
    path = f"{client.account_path()}/inboxes/{int(inbox_id)}/set_agent_bot"
    client.call("POST", path, body={"agent_bot": int(bot_id)}, empty_ok=True)


def send_message(client: ChatwootClient, conversation_id: int, content: str) -> int | None:
    """POST .../conversations/{id}/messages as the bot: an outgoing message; the new message's id."""
    path = f"{client.account_path()}/conversations/{int(conversation_id)}/messages"
    answer = client.call("POST", path, body={"content": content, "message_type": "outgoing", "private": False})
    found = answer.get("id") if isinstance(answer, dict) else None
    return int(found) if isinstance(found, int | float) and not isinstance(found, bool) else None


def open_conversation(client: ChatwootClient, conversation_id: int) -> None:
    """POST .../conversations/{id}/toggle_status {"status": "open"}: human agents take the conversation."""
    path = f"{client.account_path()}/conversations/{int(conversation_id)}/toggle_status"
    client.call("POST", path, body={"status": "open"})


__all__ = [
    "AgentBot",
    "create_agent_bot",
    "create_website_inbox",
    "list_agent_bots",
    "normalise_site",
    "open_conversation",
    "send_message",
    "set_agent_bot",
]


def update_agent_bot_url(client: ChatwootClient, bot_id: int, outgoing_url: str) -> tuple[AgentBot, str]:
    """PATCH .../agent_bots/{id} with a new outgoing URL (adopting a bot whose secret was lost)."""
    path = f"{client.account_path()}/agent_bots/{int(bot_id)}"
    answer = client.call("PATCH", path, body={"outgoing_url": outgoing_url})
    token = answer.get("access_token") if isinstance(answer, dict) else None
    return _bot(answer), token if isinstance(token, str) else ""
