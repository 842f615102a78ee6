"""`streamlit run app.py` with HubSpot's fixed hosts pointed at a local fake (for the browser tests only).

HubSpot's consent page and API are not something a person configures (providers/hubspot.py), so a real
server process cannot reach a fake by settings: this launcher sets them from FAKE_HUBSPOT_BASE in the
same interpreter, then hands over to Streamlit's own command line, which runs app.py in this process.
"""

from __future__ import annotations

import os
import sys

from streamlit.web import cli

import providers.hubspot as hubspot

if __name__ == "__main__":
    base = os.environ["FAKE_HUBSPOT_BASE"]
    hubspot.API_BASE = base
    hubspot.AUTHORIZE_URL = base + "/oauth/authorize"
    sys.argv = ["streamlit", "run", "app.py", *sys.argv[1:]]
    sys.exit(cli.main())
