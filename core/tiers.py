"""Subscription tiers, in order, and the one table of limits and feature gates."""

from __future__ import annotations

from enum import IntEnum

from core.errors import TierLimitError  # defined with the error family; still importable from here

UNLIMITED = -1


class Tier(IntEnum):
    FREE = 0
    STARTER = 1
    TEAM = 2
    PRO_PLUS = 3
    BUSINESS = 4
    ENTERPRISE = 5

    @property
    def label(self) -> str:
        """The tier as people write it: "Pro Plus", never PRO_PLUS."""
        return self.name.replace("_", " ").title()

    @classmethod
    def parse(cls, value: str | Tier) -> Tier:
        if isinstance(value, Tier):
            return value
        try:
            return cls[str(value).strip().upper().replace(" ", "_").replace("-", "_")]
        except KeyError as exc:
            names = ", ".join(t.name for t in cls)
            raise ValueError(f"Unknown tier {value!r}; choose one of {names}.") from exc


def tier_label(value: str | Tier | None) -> str:
    """The one way a tier is shown to a person: "Pro Plus" for PRO_PLUS, "pro_plus" or Tier.PRO_PLUS. A
    stored value this version does not know is shown as stored (never hidden); None or "" as "No tier"."""
    if value is None or value == "":
        return "No tier"
    try:
        return Tier.parse(value).label
    except ValueError:
        return str(value)


# The one table. UNLIMITED means no limit.
LIMITS: dict[str, dict[Tier, int]] = {
    "integrations": {
        Tier.FREE: 3,
        Tier.STARTER: 10,
        Tier.TEAM: 25,
        Tier.PRO_PLUS: 50,
        Tier.BUSINESS: 200,
        Tier.ENTERPRISE: UNLIMITED,
    },
    "contact_syncs": {
        Tier.FREE: 1,
        Tier.STARTER: 2,
        Tier.TEAM: 5,
        Tier.PRO_PLUS: 10,
        Tier.BUSINESS: 50,
        Tier.ENTERPRISE: UNLIMITED,
    },
    "helpdesk_agents": {
        Tier.FREE: 1,
        Tier.STARTER: 2,
        Tier.TEAM: 3,
        Tier.PRO_PLUS: 4,
        Tier.BUSINESS: 5,
        Tier.ENTERPRISE: UNLIMITED,
    },
}

# How often the engine checks each active integration, by its owner's tier (core.integrations.schedule
# spreads the checks over the interval with jitter). CHECK_INTERVAL_SECONDS overrides it for demos and tests.
CHECK_INTERVAL_SECONDS: dict[Tier, int] = {
    Tier.FREE: 24 * 3600,
    Tier.STARTER: 6 * 3600,
    Tier.TEAM: 3600,
    Tier.PRO_PLUS: 30 * 60,
    Tier.BUSINESS: 15 * 60,
    Tier.ENTERPRISE: 5 * 60,
}

# How often the engine runs each contact sync (core/sync), by its owner's tier; None: only when a person asks
# (Sync now, manage.py syncs run).
SYNC_INTERVAL_SECONDS: dict[Tier, int | None] = {
    Tier.FREE: None,
    Tier.STARTER: 24 * 3600,
    Tier.TEAM: 6 * 3600,
    Tier.PRO_PLUS: 3600,
    Tier.BUSINESS: 30 * 60,
    Tier.ENTERPRISE: 15 * 60,
}

# Lowest tier that opens each feature.
FEATURE_MIN_TIER: dict[str, Tier] = {
    "CRM": Tier.FREE,
    "HELPDESK": Tier.FREE,
    "CHAT_WIDGET": Tier.STARTER,
    "DATABASE": Tier.PRO_PLUS,
    "API": Tier.PRO_PLUS,
    "WEBHOOK": Tier.PRO_PLUS,
}


def limit(name: str, tier: Tier) -> int:
    return LIMITS[name][tier]


def allows(tier: Tier, minimum: Tier) -> bool:
    return tier >= minimum


def first_tier_above(name: str, count: int) -> Tier | None:
    """The lowest tier whose limit allows more than `count`."""
    for tier in Tier:
        value = LIMITS[name][tier]
        if value == UNLIMITED or value > count:
            return tier
    return None


def check_limit(name: str, tier: Tier, used: int, what: str, person: str | None = None) -> None:
    """Raises TierLimitError when `used` reaches the tier's limit; `person` names someone else's account (an
    administrator giving them an integration) instead of "Your"."""
    allowed = limit(name, tier)
    if allowed == UNLIMITED or used < allowed:
        return
    upgrade = first_tier_above(name, used)
    hint = f" The {upgrade.label} tier allows more." if upgrade else ""
    whose, have = (f"{person}'s", "they have") if person else ("Your", "you have")
    raise TierLimitError(f"{whose} {tier.label} tier allows {allowed} {what}, and {have} {used}.{hint}")


def check_feature(feature: str, tier: Tier, what: str) -> None:
    minimum = FEATURE_MIN_TIER[feature]
    if not allows(tier, minimum):
        raise TierLimitError(f"{what} needs the {minimum.label} tier or higher; yours is {tier.label}.")
