"""The server's own paths beside the Streamlit pages: routes.py (with connect_routes.py and bot_routes.py)
serves them, and core and ui build addresses from them.

Constants alone, importing nothing: app.py declares the routes before the server answers, and declaring
them must not load the services behind them.
"""

SESSION_PATH = "/auth/session"  # POST: sets the HttpOnly sign-in cookie (ui/auth.py posts the ticket)
SIGN_OUT_PATH = "/auth/sign-out"  # POST: clears it
# The OAuth callback; the redirect URI every provider is given is PUBLIC_BASE_URL + this path.
CALLBACK_PATH = "/oauth/callback"
LINK_PATH = "/connect/"  # + a connect link's token: the customer's public page
LINK_DONE_PATH = "/connect/done"  # where a customer's OAuth flow lands
BOT_PATH = "/bots/chatwoot/"  # + <receiver id>/<secret>: the greeting bot's receiver
SELF_TEST = "self-test"  # BOT_PATH + <receiver id>/self-test: the receiver's self-test
