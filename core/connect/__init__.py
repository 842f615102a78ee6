"""Connecting a CRM by OAuth consent: the console's own OAuth apps (apps), the authorization-code flow
(flows) and what each provider declares about it (spec)."""
