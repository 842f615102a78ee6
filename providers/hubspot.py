"""HubSpot (coming soon: the connection test arrives with the CRM providers issue)."""

from core.catalog import Provider
from core.fields import FieldSpec

PROVIDER = Provider(
    key="HUBSPOT",
    name="HubSpot",
    description="Contacts, companies and deals through a HubSpot private app.",
    category="CRM",
    status="coming_soon",
    fields=(
        FieldSpec(
            "accessToken",
            "Private App Access Token",
            "password",
            required=True,
            min_length=20,
            sensitive=True,
            help="Settings > Integrations > Private apps > your app > Access token.",
        ),
    ),
)
