"""The Zoho CRM, Salesforce and Pipedrive forms through AppTest: each renders from its fields, saves, and
stores its secrets encrypted while the page shows only the mask."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from core.crypto import is_encrypted
from core.fields import MASK
from core.models import Integration
from tests.app.conftest import button, sign_in, text_input, texts

CRM_CHOICES = ["Chatwoot", "Salesforce", "HubSpot", "Zoho CRM", "Pipedrive", "Custom CRM"]
FORMS = {
    "Zoho CRM": {
        "Client ID": "1000.ZOHOCLIENTID",
        "Client Secret": "zoho-secret-" + "S3cr3tValue42",
        "Refresh Token": "1000.zoho-refresh-" + "R3fr3shValue42",
    },
    "Salesforce": {
        "My Domain URL": "https://acme.my.salesforce.com",
        "Consumer Key (client id)": "3MVG9salesforceKey",
        "Consumer Secret": "sf-secret-" + "C0nsum3rValue42",
        "Refresh Token": "5Aep861sf-refresh-" + "R3fr3shValue42",
    },
    "Pipedrive": {"Company Domain": "acme", "API Token": "pd-token-" + "Ap1T0kenValue42"},
}
SECRET_LABELS = {"Client Secret", "Refresh Token", "Consumer Secret", "API Token"}


@pytest.mark.parametrize("provider_name", list(FORMS))
def test_crm_form_saves_with_secrets_encrypted(app_env, owner, provider_name):
    at = sign_in("olga", "olga-password-1")
    at.switch_page("app_pages/integrations.py")
    at.run()
    at.button(key="add-CRM").click()
    at.run()
    at.selectbox[0].select_index(CRM_CHOICES.index(provider_name))
    at.run()
    assert not at.exception, at.exception
    text_input(at, "Integration name").input(f"Acme {provider_name}")
    for label, value in FORMS[provider_name].items():
        text_input(at, label).input(value)
    button(at, "Save integration").click()
    at.run()
    assert not at.exception, at.exception

    (view,) = app_env.integrations.list_integrations(owner)
    assert view.provider_name == provider_name and view.name == f"Acme {provider_name}"
    with app_env.factory() as session:
        stored = session.scalar(select(Integration.configuration).where(Integration.id == view.id))
    secrets = [value for label, value in FORMS[provider_name].items() if label in SECRET_LABELS]
    for secret in secrets:
        assert secret not in json.dumps(stored) and secret not in texts(at)
    sensitive = [name for name, value in view.configuration.items() if value == MASK]
    assert len(sensitive) == len(secrets) and all(is_encrypted(stored[name]) for name in sensitive)
