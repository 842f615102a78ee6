"""Alerts on changes of an integration's health, not on every check (README, "Alerts").

channels.py       e-mail (SMTP), a Slack-compatible incoming webhook and a signed outgoing webhook
messages.py       AlertMessage: the subject, plain text and JSON payload of one alert
subscriptions.py  SubscriptionService: who is told about what, over which channel (targets encrypted)
pipeline.py       AlertPipeline: health changes -> deliveries (grouped into incidents) -> retried sends
"""
