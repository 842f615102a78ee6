"""core.tiers: the order of tiers, the one table of limits, refusals that name the tier that allows more."""

from __future__ import annotations

import itertools

import pytest

from core import tiers
from core.tiers import UNLIMITED, Tier, TierLimitError, check_feature, check_limit

ORDER = ["FREE", "STARTER", "TEAM", "PRO_PLUS", "BUSINESS", "ENTERPRISE"]


def test_tiers_are_ordered():
    assert [t.name for t in sorted(Tier)] == ORDER
    assert Tier.FREE < Tier.STARTER < Tier.TEAM < Tier.PRO_PLUS < Tier.BUSINESS < Tier.ENTERPRISE


@pytest.mark.parametrize(("lower", "higher"), list(itertools.pairwise(ORDER)))
def test_each_tier_allows_what_the_one_below_allows(lower, higher):
    assert tiers.allows(Tier[higher], Tier[lower])
    assert not tiers.allows(Tier[lower], Tier[higher])
    assert tiers.allows(Tier[lower], Tier[lower])


@pytest.mark.parametrize(
    ("text", "tier"),
    [("FREE", Tier.FREE), ("pro_plus", Tier.PRO_PLUS), ("Pro Plus", Tier.PRO_PLUS), (" pro-plus ", Tier.PRO_PLUS)],
)
def test_parse_accepts_names_in_any_spelling(text, tier):
    assert Tier.parse(text) is tier
    assert Tier.parse(tier) is tier


def test_parse_refuses_unknown_tiers_and_lists_the_choices():
    with pytest.raises(ValueError, match="PLATINUM") as raised:
        Tier.parse("PLATINUM")
    for name in ORDER:
        assert name in str(raised.value)


def test_labels_read_like_words():
    assert Tier.PRO_PLUS.label == "Pro Plus"
    assert Tier.FREE.label == "Free"


def test_helpdesk_agent_limits_follow_the_issue():
    agents = tiers.LIMITS["helpdesk_agents"]
    assert agents[Tier.FREE] == 1
    assert agents[Tier.STARTER] == 2
    assert agents[Tier.TEAM] == 3
    assert agents[Tier.BUSINESS] == 5
    assert agents[Tier.ENTERPRISE] == UNLIMITED
    assert agents[Tier.TEAM] < agents[Tier.PRO_PLUS] < agents[Tier.BUSINESS]


@pytest.mark.parametrize("name", sorted(tiers.LIMITS))
def test_every_limit_covers_every_tier_and_never_shrinks(name):
    table = tiers.LIMITS[name]
    assert set(table) == set(Tier)
    values = [table[t] for t in sorted(Tier)]
    finite = [v for v in values if v != UNLIMITED]
    assert finite == sorted(finite)
    assert all(v > 0 for v in finite)
    # once unlimited, always unlimited
    if UNLIMITED in values:
        assert all(v == UNLIMITED for v in values[values.index(UNLIMITED) :])
    assert tiers.limit(name, Tier.ENTERPRISE) == UNLIMITED


def test_integration_limits_start_at_three_for_free():
    assert tiers.limit("integrations", Tier.FREE) == 3


@pytest.mark.parametrize("tier", [t for t in Tier if t is not Tier.ENTERPRISE])
def test_check_limit_allows_up_to_the_limit_and_refuses_at_it(tier):
    allowed = tiers.limit("integrations", tier)
    check_limit("integrations", tier, allowed - 1, "integrations")  # one more is fine
    with pytest.raises(TierLimitError) as raised:
        check_limit("integrations", tier, allowed, "integrations")
    message = str(raised.value)
    next_tier = Tier(tier + 1)
    assert f"The {next_tier.label} tier allows more." in message
    assert f"Your {tier.label} tier allows {allowed} integrations" in message


def test_check_limit_names_the_lowest_tier_that_allows_more_not_just_the_next_one():
    # 3 agents fit TEAM's limit exactly; PRO_PLUS is the first tier above TEAM allowing a 4th.
    with pytest.raises(TierLimitError, match=r"The Pro Plus tier allows more\."):
        check_limit("helpdesk_agents", Tier.FREE, 3, "helpdesk agents")
    # 10 integrations: STARTER allows exactly 10, so the tier that allows more is TEAM.
    with pytest.raises(TierLimitError, match=r"The Team tier allows more\."):
        check_limit("integrations", Tier.FREE, tiers.limit("integrations", Tier.STARTER), "integrations")


def test_first_tier_above():
    assert tiers.first_tier_above("integrations", 0) is Tier.FREE
    assert tiers.first_tier_above("integrations", 3) is Tier.STARTER
    assert tiers.first_tier_above("helpdesk_agents", 5) is Tier.ENTERPRISE
    assert tiers.first_tier_above("helpdesk_agents", 10**9) is Tier.ENTERPRISE


def test_unlimited_never_refuses():
    check_limit("integrations", Tier.ENTERPRISE, 10**9, "integrations")
    check_limit("helpdesk_agents", Tier.ENTERPRISE, 10**9, "agents")


def test_tier_limit_error_is_the_one_the_services_raise():
    from core import errors

    assert errors.TierLimitError is TierLimitError


@pytest.mark.parametrize("tier", list(Tier))
def test_chat_widget_opens_at_starter(tier):
    if tier >= Tier.STARTER:
        check_feature("CHAT_WIDGET", tier, "The chat widget")
    else:
        with pytest.raises(TierLimitError) as raised:
            check_feature("CHAT_WIDGET", tier, "The chat widget")
        assert str(raised.value) == "The chat widget needs the Starter tier or higher; yours is Free."


@pytest.mark.parametrize("feature", ["DATABASE", "API", "WEBHOOK"])
@pytest.mark.parametrize("tier", list(Tier))
def test_database_api_webhook_open_at_pro_plus(feature, tier):
    if tier >= Tier.PRO_PLUS:
        check_feature(feature, tier, "A database connection")
    else:
        with pytest.raises(TierLimitError) as raised:
            check_feature(feature, tier, "A database connection")
        message = str(raised.value)
        assert "needs the Pro Plus tier or higher" in message
        assert f"yours is {tier.label}" in message


@pytest.mark.parametrize("feature", ["CRM", "HELPDESK"])
def test_crm_and_helpdesk_are_open_to_everyone(feature):
    check_feature(feature, Tier.FREE, "This")


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (Tier.PRO_PLUS, "Pro Plus"),
        ("PRO_PLUS", "Pro Plus"),
        ("pro_plus", "Pro Plus"),
        ("FREE", "Free"),
        ("ENTERPRISE", "Enterprise"),
        ("PLATINUM", "PLATINUM"),  # a tier this version does not know is shown as stored, not hidden
        (None, "No tier"),
    ],
)
def test_one_label_for_a_tier(value, shown):
    assert tiers.tier_label(value) == shown


def test_every_tier_reads_as_words():
    for tier in Tier:
        assert "_" not in tiers.tier_label(tier) and tiers.tier_label(tier) == tier.label
