"""Templates: apply a recipe of steps (inbox, greeting bot, widget, alerts...) in one go (ui/templates.py)."""

from ui import state, templates

ctx, actor = state.context(), state.actor()
templates.render(ctx, actor)
