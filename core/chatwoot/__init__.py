"""Chatwoot: the API client, the helpdesk rules (agents and inboxes), the widget script, WidgetService and
widget presets."""
