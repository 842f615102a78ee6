"""Integrations: the service (CRUD, ownership, optimistic locking), its configuration's secret lifecycle
and its connection checks."""
