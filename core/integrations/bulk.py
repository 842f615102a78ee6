"""Acting on several integrations at once (the Integrations list's selection): test, activate, deactivate,
delete, transfer. Each integration is its own transaction, with its own ownership check, tier check and audit
record, so one refusal never undoes the others; the result names each integration's outcome."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from core.audit import Actor
from core.errors import ConsoleError
from core.integrations.health import Health
from core.words import count

if TYPE_CHECKING:
    from core.integrations.service import IntegrationView

MAX_BULK = 200  # the largest page of the list: a selection is never larger


@dataclass(frozen=True)
class BulkOutcome:
    integration_id: int
    name: str
    done: bool
    message: str  # why not, when not done; the test's message for a test
    failing: bool = False  # a test that ran and found the connection failing


@dataclass(frozen=True)
class BulkResult:
    action: str  # a past-tense verb: "Deleted", "Tested", …
    outcomes: tuple[BulkOutcome, ...]

    @property
    def done(self) -> list[BulkOutcome]:
        return [o for o in self.outcomes if o.done]

    @property
    def refused(self) -> list[BulkOutcome]:
        return [o for o in self.outcomes if not o.done]

    def summary(self) -> str:
        """One sentence for the whole selection, e.g. "Deleted 2 of 3 integrations; not Acme: it was changed…"."""
        total, done = len(self.outcomes), len(self.done)
        if total == 1 and done == 1 and self.action != "Tested":
            return f"{self.action} {self.outcomes[0].name}."
        if done == total:
            head = f"{self.action} {count(total, 'integration')}."
        else:
            head = f"{self.action} {done} of {count(total, 'integration')}."
        failing = sum(o.failing for o in self.done)
        if self.done and self.action == "Tested":
            head = head[:-1] + f": {len(self.done) - failing} connected, {failing} failing."
        if not self.refused:
            return head
        reasons = "; ".join(f"{o.name}: {o.message}" for o in self.refused[:5])
        more = f" (and {len(self.refused) - 5} more)" if len(self.refused) > 5 else ""
        return f"{head} Not done for {reasons}{more}"


class IntegrationBulk:
    """Part of IntegrationService: the selection's actions, each through the service's own single operation."""

    if TYPE_CHECKING:  # IntegrationService's own operations (declared only for the type checker)

        def get(self, actor: Actor, integration_id: int) -> IntegrationView: ...
        def set_active(self, actor: Actor, integration_id: int, active: bool) -> IntegrationView: ...
        def delete(self, actor: Actor, integration_id: int, expected_version: int | None = None) -> None: ...
        def transfer(self, actor: Actor, integration_id: int, new_owner: str) -> IntegrationView: ...

    def _each(self, actor: Actor, ids: list[int], action: str, run: Callable[[int], tuple[str, bool]]) -> BulkResult:
        outcomes = []
        for integration_id in list(dict.fromkeys(ids))[:MAX_BULK]:
            try:
                name = self.get(actor, integration_id).name
            except ConsoleError as exc:
                outcomes.append(BulkOutcome(integration_id, f"#{integration_id}", False, str(exc)))
                continue
            try:
                message, failing = run(integration_id)
                outcomes.append(BulkOutcome(integration_id, name, True, message, failing))
            except ConsoleError as exc:
                outcomes.append(BulkOutcome(integration_id, name, False, str(exc)))
        return BulkResult(action, tuple(outcomes))

    def bulk_set_active(self, actor: Actor, ids: list[int], active: bool) -> BulkResult:
        def run(integration_id: int) -> tuple[str, bool]:
            view = self.set_active(actor, integration_id, active)
            return Health.parse(view.health).label, False

        return self._each(actor, ids, "Activated" if active else "Deactivated", run)

    def bulk_delete(self, actor: Actor, versions: dict[int, int]) -> BulkResult:
        """Delete each at the version the confirmation showed: one changed since is refused, naming who."""

        def run(integration_id: int) -> tuple[str, bool]:
            self.delete(actor, integration_id, versions[integration_id])
            return "Deleted.", False

        return self._each(actor, list(versions), "Deleted", run)

    def bulk_transfer(self, actor: Actor, ids: list[int], new_owner: str) -> BulkResult:
        """Administrators: give each to new_owner, as far as their tier's limit allows (the rest are refused)."""

        def run(integration_id: int) -> tuple[str, bool]:
            self.transfer(actor, integration_id, new_owner)
            return f"Now {new_owner}'s.", False

        return self._each(actor, ids, f"Gave {new_owner}", run)
