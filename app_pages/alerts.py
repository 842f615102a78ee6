"""Alerts: who is told about health changes, over which channel, and what was sent (ui/alerts.py)."""

from ui import alerts, state

ctx, actor = state.context(), state.actor()
alerts.render(ctx, actor, ctx.users.get_by_username(actor.username).email)
