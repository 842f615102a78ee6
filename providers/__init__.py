"""The provider catalog: adding a provider means one file here and one line below."""

from core.catalog import Catalog
from providers import api, chatwoot, custom, database, hubspot, mongodb, pipedrive, salesforce, webhook, zoho

CATALOG = Catalog(
    [
        chatwoot.PROVIDER,
        salesforce.PROVIDER,
        hubspot.PROVIDER,
        zoho.PROVIDER,
        pipedrive.PROVIDER,
        custom.PROVIDER,
        *database.PROVIDERS,
        mongodb.PROVIDER,
        api.PROVIDER,
        webhook.PROVIDER,
    ]
)
