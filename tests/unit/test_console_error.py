"""One error family: every error a service raises to a caller is a ConsoleError, whose message is shown.

The modules are walked, not listed, so an error class added (or moved into a package) later is checked
too. The few exceptions that stay outside the family are named here with the reason: each may carry a
server's or a driver's own words, or never leaves the module that raises it.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import pkgutil

import pytest

import core
import manage
import providers
from core.errors import (
    ConflictError,
    ConsoleError,
    DatabaseBusyError,
    NotFoundError,
    StorageError,
    TierLimitError,
    ValidationError,
    conflict,
)

# Exceptions outside the family on purpose, by class name (so a move into a package changes nothing).
OUTSIDE = {
    # The token endpoint's own words; the providers turn it into a failed TestResult.
    "TokenError": "holds what a token endpoint said",
    # Raised and caught inside a provider's test; becomes a failed TestResult.
    "ProviderFailure": "becomes a TestResult",
    "ConnectionStringError": "a MongoDB connection string problem, turned into a field message",
    "TokenRefusal": "a ProviderFailure that keeps the token endpoint's error for the refresh",
    # The integration service and the rotation turn it into a field message or a listed failure.
    "DecryptionError": "turned into a sentence by the service that decrypts",
    # Transport errors: requests' exceptions (the adapters and retries must see them as such) and the
    # deadline, a TimeoutError; core.http.describe_exception maps them to sentences.
    "BlockedAddressError": "a requests exception",
    "ResponseTooLargeError": "a requests exception",
    "RedirectRefusedError": "a requests exception",
    "DeadlineExceeded": "a TimeoutError inside the transport",
}


def _modules():
    yield manage
    for package in (core, providers):
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if ".migrations" in info.name:  # alembic's env.py runs migrations when imported
                continue
            yield importlib.import_module(info.name)


def _error_classes() -> dict[str, type[BaseException]]:
    found = {}
    for module in _modules():
        for name, value in vars(module).items():
            if inspect.isclass(value) and issubclass(value, BaseException) and value.__module__ == module.__name__:
                found[f"{module.__name__}.{name}"] = value
    return found


ERRORS = _error_classes()


def test_the_walk_finds_the_errors_of_core_providers_and_the_cli():
    names = {path.rsplit(".", 1)[1] for path in ERRORS}
    expected = {"NotFoundError", "ChatwootError", "HelpdeskError", "RateLimitedError", "SettingsError"}
    assert expected | {"CommandError", "RotationInterrupted", "TierLimitError", *OUTSIDE} <= names


@pytest.mark.parametrize("path", sorted(p for p in ERRORS if not p.rsplit(".", 1)[1].startswith("_")))
def test_every_public_error_class_is_a_console_error_or_named_as_outside(path):
    cls = ERRORS[path]
    name = path.rsplit(".", 1)[1]
    if name in OUTSIDE:
        # Outside the family, so a page's `except ConsoleError` never shows its text to a person.
        assert not issubclass(cls, ConsoleError), f"{path} is outside the family: {OUTSIDE[name]}"
    else:
        assert issubclass(cls, ConsoleError), f"{path} must derive from core.errors.ConsoleError"


def test_private_control_flow_exceptions_stay_outside_the_family():
    private = {path: cls for path, cls in ERRORS.items() if path.rsplit(".", 1)[1].startswith("_")}
    assert private  # providers' _Refused/_Unexpected, core.http's _Refusal, core.users' _LastAdmin
    assert not [path for path, cls in private.items() if issubclass(cls, ConsoleError)]


def test_the_shared_errors_keep_their_own_shape():
    assert issubclass(DatabaseBusyError, StorageError)
    assert issubclass(ERRORS["core.catalog.UnknownProviderError"], NotFoundError)
    helpdesk = {path.rsplit(".", 1)[1]: cls for path, cls in ERRORS.items() if ".helpdesk" in path}
    assert issubclass(helpdesk["HelpdeskUnavailable"], helpdesk["HelpdeskError"])
    import core.tiers

    assert core.tiers.TierLimitError is TierLimitError


def test_the_message_is_what_is_shown():
    error = ConsoleError("The integration was not found. Reload the page.")
    assert error.message == str(error) == "The integration was not found. Reload the page."
    busy = DatabaseBusyError()
    assert busy.message == str(busy) == DatabaseBusyError.MESSAGE
    invalid = ValidationError({"name": "Name is required."})
    assert invalid.message == "Some fields need attention: Name is required."
    stale = conflict("this integration", "bob", None)
    assert isinstance(stale, ConflictError) and stale.message.startswith("bob changed this integration")


def run_cli_raising(monkeypatch, error: Exception) -> int:
    """manage.main's exit status when its command raises error."""

    def failing(_args):
        raise error

    def parser():
        built = argparse.ArgumentParser(prog="manage.py")
        built.set_defaults(func=failing)
        return built

    monkeypatch.setattr(manage, "build_parser", parser)
    return manage.main([])


def test_the_cli_maps_any_console_error_to_exit_2_with_its_sentence(monkeypatch, capsys):
    class SomeNewError(ConsoleError):
        pass

    assert (
        run_cli_raising(monkeypatch, SomeNewError("The frobnicator is switched off. Switch it on under Settings.")) == 2
    )
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == "Error: The frobnicator is switched off. Switch it on under Settings.\n"


@pytest.mark.parametrize(
    "path", ["core.chatwoot.client.ChatwootError", "core.chatwoot.helpdesk.HelpdeskError", "manage.CommandError"]
)
def test_the_cli_maps_the_module_errors_to_exit_2(monkeypatch, capsys, path):
    cls = next(c for p, c in ERRORS.items() if p.rsplit(".", 1)[1] == path.rsplit(".", 1)[1])

    assert run_cli_raising(monkeypatch, cls("Something refused. Do the thing first.")) == 2
    assert capsys.readouterr().err == "Error: Something refused. Do the thing first.\n"
