"""Integrations: the service (service.py), its configuration's secret lifecycle (configuration.py), its
connection tests (checks.py), check all (check_all.py, with leases.py), statistics.py and exports.py."""
