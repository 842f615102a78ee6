"""The fake Chatwoot's inbox creation, agent bots and conversations (a mixin of FakeChatwoot).

- POST .../inboxes/ with a web_widget channel (administrators), answered with the new inbox;
- GET/POST .../agent_bots, PATCH .../agent_bots/{id} (administrators); a created bot gets an access token;
- POST .../inboxes/{id}/set_agent_bot (204);
- GET .../conversations (inbox_id, status — "open" unless given, "all" for every one — and page, 25 a
  page, newest activity first), answered as {"data": {"meta": counts, "payload": conversations}};
- POST .../conversations/{id}/messages and .../toggle_status, with a user's token of the account or the
  access token of the agent bot attached to the conversation's inbox (as Chatwoot allows a bot).

Test hooks: ``add_conversation(account_id, inbox_id, visitor_message=..., created_at=...)``;
``messages`` (every message created, in order);
``agent_bots``; ``conversations``.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from tests.fakes.chatwoot_replies import _error, _invalid, _json, _Refusal, _Reply

ACCOUNT = r"/api/v1/accounts/(?P<account_id>\d+)"
BOT_ROUTES: tuple[tuple[str, str, str], ...] = (
    ("POST", ACCOUNT + r"/inboxes/", "create_inbox"),
    ("GET", ACCOUNT + r"/agent_bots", "list_agent_bots"),
    ("POST", ACCOUNT + r"/agent_bots", "create_agent_bot"),
    ("PATCH", ACCOUNT + r"/agent_bots/(?P<bot_id>\d+)", "update_agent_bot"),
    ("POST", ACCOUNT + r"/inboxes/(?P<inbox_id>\d+)/set_agent_bot", "set_agent_bot"),
    ("GET", ACCOUNT + r"/conversations", "list_conversations"),
    ("POST", ACCOUNT + r"/conversations/(?P<conversation_id>\d+)/messages", "create_message"),
    ("POST", ACCOUNT + r"/conversations/(?P<conversation_id>\d+)/toggle_status", "toggle_status"),
)
NOT_FOUND = "Resource could not be found"
INVALID_TOKEN = "Invalid Access Token"
NOT_ALLOWED = "You are not authorized to do this action"
STATUSES = ("open", "resolved", "pending", "snoozed")


@dataclass
class AgentBotState:
    id: int
    account_id: int
    name: str
    description: str
    outgoing_url: str
    access_token: str


@dataclass
class Conversation:
    account_id: int
    display_id: int
    inbox_id: int
    status: str = "pending"  # a conversation an agent bot answers starts pending
    created_at: int = 0
    last_activity_at: int = 0


@dataclass
class MessageState:
    id: int
    account_id: int
    conversation_id: int
    content: str
    message_type: str
    sender_type: str  # agent_bot | user | contact
    sender_id: int
    created_at: int = 0


class BotsMixin:
    """State and handlers; FakeChatwoot supplies _lock, _next_id, _account_member, _token and inboxes."""

    agent_bots: dict[int, AgentBotState]
    conversations: dict[tuple[int, int], Conversation]
    messages: list[MessageState]

    def init_bots(self) -> None:
        self.agent_bots = {}
        self.conversations = {}
        self.messages = []

    def add_conversation(
        self,
        account_id: int,
        inbox_id: int,
        status: str = "pending",
        *,
        visitor_message: str | None = None,
        created_at: int | None = None,
    ) -> Conversation:
        """A conversation of the inbox, started by a visitor's message when ``visitor_message`` is given."""
        with self._lock:  # type: ignore[attr-defined]
            display_id = self._next_id(f"conversation-{account_id}")  # type: ignore[attr-defined]
            at = int(time.time()) if created_at is None else created_at
            conversation = Conversation(account_id, display_id, inbox_id, status, at, at)
            self.conversations[(account_id, display_id)] = conversation
            if visitor_message is not None:
                self.messages.append(
                    MessageState(
                        self._next_id("message"),  # type: ignore[attr-defined]
                        account_id,
                        display_id,
                        visitor_message,
                        "incoming",
                        "contact",
                        0,
                        at,
                    )
                )
            return conversation

    def messages_in(self, account_id: int, conversation_id: int) -> list[MessageState]:
        return [m for m in self.messages if (m.account_id, m.conversation_id) == (account_id, conversation_id)]

    # ----- representations -------------------------------------------------------------------

    @staticmethod
    def _bot_json(bot: AgentBotState) -> dict:
        return {
            "id": bot.id,
            "name": bot.name,
            "description": bot.description,
            "thumbnail": "",
            "outgoing_url": bot.outgoing_url,
            "bot_type": "webhook",
            "bot_config": {},
            "account_id": bot.account_id,
            "access_token": bot.access_token,
            "system_bot": False,
        }

    @staticmethod
    def _message_json(conversation: Conversation, m: MessageState, inbox_id: int) -> dict:
        return {
            "id": m.id,
            "content": m.content,
            "account_id": m.account_id,
            "inbox_id": inbox_id,
            "conversation_id": conversation.display_id,
            "message_type": 0 if m.message_type == "incoming" else 1,
            "created_at": m.created_at,
            "updated_at": m.created_at,
            "private": False,
            "status": "sent",
            "content_type": "text",
            "content_attributes": {},
            "sender_type": {"user": "agent"}.get(m.sender_type, m.sender_type),
            "sender_id": m.sender_id,
        }

    def _conversation_json(self, c: Conversation) -> dict:
        """A conversation as the list shows it: its last message, like Chatwoot's list partial."""
        shown = self.messages_in(c.account_id, c.display_id)[-1:]
        body: dict[str, Any] = {
            "id": c.display_id,
            "account_id": c.account_id,
            "inbox_id": c.inbox_id,
            "uuid": f"00000000-0000-4000-8000-{c.display_id:012d}",
            "messages": [self._message_json(c, m, c.inbox_id) for m in shown],
            "additional_attributes": {},
            "custom_attributes": {},
            "labels": [],
            "muted": False,
            "can_reply": True,
            "unread_count": len(shown),
            "created_at": c.created_at,
            "updated_at": c.last_activity_at,
            "timestamp": str(c.last_activity_at),
            "last_activity_at": c.last_activity_at,
            "priority": "",
            "meta": {"sender": {"id": 0, "name": "Visitor"}, "channel": "Channel::WebWidget"},
        }
        if c.status in ("open", "resolved", "pending"):  # the description's enum has no "snoozed"
            body["status"] = c.status
        return body

    def _do_list_conversations(self, received, body: dict, account_id: str) -> _Reply:
        _, account, _ = self._account_member(received, account_id)  # type: ignore[attr-defined]
        query = {k: v[-1] for k, v in parse_qs(received.query).items()}
        status = query.get("status") or "open"
        inbox = query.get("inbox_id")
        try:
            page = max(1, int(query.get("page") or 1))
            inbox_id = int(inbox) if inbox else None
        except ValueError:
            return _error(400, "page and inbox_id must be numbers")
        chosen = [
            c
            for c in self.conversations.values()
            if c.account_id == account.id
            and (inbox_id is None or c.inbox_id == inbox_id)
            and (status == "all" or c.status == status)
        ]
        chosen.sort(key=lambda c: (c.last_activity_at, c.display_id), reverse=True)
        shown = chosen[(page - 1) * 25 : page * 25]
        meta = {"mine_count": 0, "assigned_count": 0, "unassigned_count": len(chosen), "all_count": len(chosen)}
        return _json(200, {"data": {"meta": meta, "payload": [self._conversation_json(c) for c in shown]}})

    # ----- handlers --------------------------------------------------------------------------

    def _do_create_inbox(self, received, body: dict, account_id: str) -> _Reply:
        _, account, _ = self._account_member(received, account_id, admin=True)  # type: ignore[attr-defined]
        channel = body.get("channel")
        if not body.get("name"):
            return _invalid("Name can't be blank", "name")
        if not isinstance(channel, dict) or channel.get("type") != "web_widget":
            return _error(422, "param is missing or the value is empty: channel")
        if not channel.get("website_url"):
            return _invalid("Website url can't be blank", "website_url")
        inbox = self.add_inbox(account.id, str(body["name"]), website_url=str(channel["website_url"]))  # type: ignore[attr-defined]
        inbox.widget_color = str(channel.get("widget_color") or "#1f93ff")
        inbox.welcome_title = str(channel.get("welcome_title") or "")
        inbox.welcome_tagline = str(channel.get("welcome_tagline") or "")
        return _json(200, self._inbox_json(inbox))  # type: ignore[attr-defined]

    def _do_list_agent_bots(self, received, body: dict, account_id: str) -> _Reply:
        _, account, _ = self._account_member(received, account_id, admin=True)  # type: ignore[attr-defined]
        return _json(200, [self._bot_json(b) for b in self.agent_bots.values() if b.account_id == account.id])

    def _do_create_agent_bot(self, received, body: dict, account_id: str) -> _Reply:
        _, account, _ = self._account_member(received, account_id, admin=True)  # type: ignore[attr-defined]
        if not body.get("name"):
            return _invalid("Name can't be blank", "name")
        bot = AgentBotState(
            self._next_id("agent_bot"),  # type: ignore[attr-defined]
            account.id,
            str(body["name"]),
            str(body.get("description") or ""),
            str(body.get("outgoing_url") or ""),
            secrets.token_urlsafe(18),
        )
        self.agent_bots[bot.id] = bot
        return _json(200, self._bot_json(bot))

    def _do_update_agent_bot(self, received, body: dict, account_id: str, bot_id: str) -> _Reply:
        _, account, _ = self._account_member(received, account_id, admin=True)  # type: ignore[attr-defined]
        bot = self.agent_bots.get(int(bot_id))
        if bot is None or bot.account_id != account.id:
            return _error(404, NOT_FOUND)
        if isinstance(body.get("outgoing_url"), str):
            bot.outgoing_url = body["outgoing_url"]
        if isinstance(body.get("name"), str) and body["name"]:
            bot.name = body["name"]
        return _json(200, self._bot_json(bot))

    def _do_set_agent_bot(self, received, body: dict, account_id: str, inbox_id: str) -> _Reply:
        _, account, _ = self._account_member(received, account_id, admin=True)  # type: ignore[attr-defined]
        inbox = self._inbox_in(account, inbox_id)  # type: ignore[attr-defined]
        bot_id = body.get("agent_bot")
        bot = self.agent_bots.get(int(bot_id)) if isinstance(bot_id, int | float) else None
        if bot is None or bot.account_id != account.id:
            return _error(404, NOT_FOUND)
        inbox.agent_bot_id = bot.id
        return _Reply(204, b"", None)

    def _conversation_for(self, received, account_id: str, conversation_id: str) -> tuple[Conversation, str, int]:
        """The conversation and who acts on it: a bot attached to its inbox, or a user of the account."""
        conversation = self.conversations.get((int(account_id), int(conversation_id)))
        token = self._token(received) or ""  # type: ignore[attr-defined]
        bot = next((b for b in self.agent_bots.values() if secrets.compare_digest(b.access_token, token)), None)
        if bot is not None:
            if conversation is None or bot.account_id != conversation.account_id:
                raise _Refusal(_error(404, NOT_FOUND))
            inbox = self.inboxes.get(conversation.inbox_id)  # type: ignore[attr-defined]
            if inbox is None or inbox.agent_bot_id != bot.id:
                raise _Refusal(_error(401, NOT_ALLOWED))
            return conversation, "agent_bot", bot.id
        user, _account, _ = self._account_member(received, account_id)  # type: ignore[attr-defined]
        if conversation is None:
            raise _Refusal(_error(404, NOT_FOUND))
        return conversation, "user", user.id

    def _do_create_message(self, received, body: dict, account_id: str, conversation_id: str) -> _Reply:
        conversation, sender_type, sender_id = self._conversation_for(received, account_id, conversation_id)
        content = body.get("content")
        if not isinstance(content, str) or not content:
            return _error(422, "param is missing or the value is empty: content")
        message_type = str(body.get("message_type") or "outgoing")
        message = MessageState(
            self._next_id("message"),  # type: ignore[attr-defined]
            conversation.account_id,
            conversation.display_id,
            content,
            message_type,
            sender_type,
            sender_id,
            int(time.time()),
        )
        self.messages.append(message)
        now = message.created_at
        conversation.last_activity_at = now
        answer: dict[str, Any] = {
            "id": message.id,
            "content": content,
            "account_id": conversation.account_id,
            "inbox_id": conversation.inbox_id,
            "conversation_id": conversation.display_id,
            "message_type": 1 if message_type == "outgoing" else 0,
            "created_at": now,
            "updated_at": now,
            "private": bool(body.get("private")),
            "status": "sent",
            "content_type": "text",
            "content_attributes": {},
            "sender_type": "agent_bot" if sender_type == "agent_bot" else "agent",
            "sender_id": sender_id,
        }
        return _json(200, answer)

    def _do_toggle_status(self, received, body: dict, account_id: str, conversation_id: str) -> _Reply:
        conversation, _, _ = self._conversation_for(received, account_id, conversation_id)
        status = body.get("status")
        if status not in STATUSES:
            return _error(422, "param is missing or the value is empty: status")
        conversation.status = str(status)
        payload = {"success": True, "current_status": conversation.status, "conversation_id": conversation.display_id}
        return _json(200, {"meta": {}, "payload": payload})
