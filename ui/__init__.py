"""Streamlit helpers shared by the pages: the cached services, the signed-in actor, field widgets."""
