"""Pipedrive (coming soon: the connection test arrives with the CRM providers issue)."""

from core.catalog import Provider
from core.fields import FieldSpec

PROVIDER = Provider(
    key="PIPEDRIVE",
    name="Pipedrive",
    description="Deals, persons and organisations in a Pipedrive company account.",
    category="CRM",
    status="coming_soon",
    fields=(
        FieldSpec(
            "companyDomain",
            "Company Domain",
            "text",
            required=True,
            pattern=r"[a-z0-9][a-z0-9-]{0,62}",
            pattern_message="Only the part before .pipedrive.com, for example acme.",
            placeholder="acme",
        ),
        FieldSpec("apiToken", "API Token", "password", required=True, min_length=20, sensitive=True),
    ),
)
