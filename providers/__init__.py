"""The provider catalog: adding a provider means one file here and one line below."""

from core.catalog import Catalog
from providers import chatwoot, custom, hubspot, pipedrive, salesforce, zoho

CATALOG = Catalog(
    [
        chatwoot.PROVIDER,
        salesforce.PROVIDER,
        hubspot.PROVIDER,
        zoho.PROVIDER,
        pipedrive.PROVIDER,
        custom.PROVIDER,
    ]
)
