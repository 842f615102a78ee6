"""Salesforce (coming soon: the connection test arrives with the CRM providers issue)."""

from core.catalog import Provider
from core.fields import FieldSpec

PROVIDER = Provider(
    key="SALESFORCE",
    name="Salesforce",
    description="Leads, contacts and opportunities over Salesforce's REST API (OAuth 2).",
    category="CRM",
    status="coming_soon",
    fields=(
        FieldSpec(
            "instanceUrl",
            "My Domain URL",
            "url",
            required=True,
            pattern=r"https://[A-Za-z0-9.-]+\.my\.salesforce\.com",
            pattern_message="Use your My Domain address, like https://acme.my.salesforce.com.",
            placeholder="https://acme.my.salesforce.com",
        ),
        FieldSpec("clientId", "Consumer Key (client id)", "text", required=True),
        FieldSpec("clientSecret", "Consumer Secret", "password", required=True, sensitive=True),
        FieldSpec(
            "refreshToken",
            "Refresh Token",
            "password",
            sensitive=True,
            help="Leave empty to use the client-credentials flow of your connected app.",
        ),
    ),
)
