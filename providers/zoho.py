"""Zoho CRM (coming soon: the connection test arrives with the CRM providers issue)."""

from core.catalog import Provider
from core.fields import FieldSpec

DATA_CENTRES = ("com", "eu", "in", "com.au", "jp", "com.cn", "zohocloud.ca", "sa")

PROVIDER = Provider(
    key="ZOHO",
    name="Zoho CRM",
    description="Zoho CRM modules over its v2 API with an OAuth 2 refresh token.",
    category="CRM",
    status="coming_soon",
    fields=(
        FieldSpec("dataCentre", "Data Centre", "select", required=True, options=DATA_CENTRES, default="com"),
        FieldSpec("clientId", "Client ID", "text", required=True),
        FieldSpec("clientSecret", "Client Secret", "password", required=True, sensitive=True),
        FieldSpec("refreshToken", "Refresh Token", "password", required=True, sensitive=True),
    ),
)
