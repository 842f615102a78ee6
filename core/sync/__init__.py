"""Contact sync between a CRM and Chatwoot: identity, adapters' vocabulary, runs and reports."""
