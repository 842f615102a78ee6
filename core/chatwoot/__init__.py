"""Chatwoot: the API client, the helpdesk rules (agents and inboxes), the widget script and its presets."""
