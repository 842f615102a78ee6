"""Start the console with `streamlit run app.py`: Home.py plus the server's own routes (routes.py).

The routes set and clear the HttpOnly sign-in cookie; `streamlit run Home.py` would serve the pages
without them, and nobody could stay signed in across a reload.
"""

import streamlit as st

from routes import ROUTES

app = st.App("Home.py", routes=ROUTES)
