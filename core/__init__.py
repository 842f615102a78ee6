"""Plain-Python services of the Integrations Console. Never imports streamlit, pages or providers."""
