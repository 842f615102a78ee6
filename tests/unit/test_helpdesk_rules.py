"""The helpdesk's rules as pure functions: password policy, plus-addressing, seat limits."""

from __future__ import annotations

import pytest

from core.chatwoot.client import Agent
from core.chatwoot.helpdesk import (
    SLUG_MAX_LENGTH,
    agent_email,
    check_seats,
    count_seats,
    is_valid_email,
    password_problems,
    password_rules,
    seat_usage,
    slugify,
    validate_password,
)
from core.errors import ValidationError
from core.tiers import Tier, TierLimitError

# ----- password policy ---------------------------------------------------------------------------------


def rules_of(password: str) -> dict[str, bool]:
    return {rule.key: rule.ok for rule in password_rules(password)}


def test_every_rule_is_listed_in_order_with_a_label():
    rules = password_rules("")
    assert [r.key for r in rules] == ["min_length", "number", "special", "upper", "lower", "max_length"]
    assert all(r.label for r in rules)
    assert rules_of("") == {
        "min_length": False,
        "number": False,
        "special": False,
        "upper": False,
        "lower": False,
        "max_length": True,
    }


@pytest.mark.parametrize(
    ("password", "failing"),
    [
        ("Str0ng!pass", set()),
        ("Aa1!aaaa", set()),  # exactly 8
        ("Aa1!aaa", {"min_length"}),
        ("Strong!pass", {"number"}),
        ("Str0ngpass", {"special"}),
        ("str0ng!pass", {"upper"}),
        ("STR0NG!PASS", {"lower"}),
        ("Aa1!" + "a" * 124, set()),  # exactly 128
        ("Aa1!" + "a" * 125, {"max_length"}),
        ("Ünïcödé1!x", {"upper"}),  # Ü is not A-Z: Chatwoot counts Latin letters only
        ("Abcdefg1€", {"special"}),  # € is not one of the special characters Chatwoot counts
        ("Pass word 1 ", {"special"}),  # a space is not special either
        ("Pass-word1", set()),
    ],
)
def test_password_rules(password, failing):
    assert {key for key, ok in rules_of(password).items() if not ok} == failing
    assert len(password_problems(password)) == len(failing)


def test_validate_password_names_every_failing_rule():
    validate_password("Str0ng!pass")
    with pytest.raises(ValidationError) as caught:
        validate_password("short")
    message = caught.value.errors["password"]
    for part in ("at least 8 characters", "a number", "a special character", "an upper-case letter"):
        assert part in message
    assert "lower-case" not in message
    with pytest.raises(ValidationError):
        validate_password(None)


# ----- plus-addressing -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("Nia New", "nia-new"),
        ("  Nia   New  ", "nia-new"),
        ("José Müller", "jose-muller"),
        ("François Ça-va", "francois-ca-va"),
        ("Straße Ærø Łódź", "strasse-aero-lodz"),
        ("Zoë 🙂 Smith", "zoe-smith"),
        ("🙂Ana🙂Bell🙂", "ana-bell"),
        ("O'Brien & Sons, Ltd.", "o-brien-sons-ltd"),
        ("Agent #7", "agent-7"),
        ("ＡＢＣ １２３", "abc-123"),  # full-width forms fold to ASCII (NFKD)
        ("ﬁnance", "finance"),  # ligature
        ("李 Lee", "lee"),  # other scripts become separators
        ("a--b__c", "a-b-c"),
    ],
)
def test_slug_rules(name, slug):
    assert slugify(name) == slug


def test_slug_is_cut_to_30_characters_without_a_trailing_dash():
    long = slugify("A very long agent name that keeps going and going")
    assert len(long) <= SLUG_MAX_LENGTH
    assert long == "a-very-long-agent-name-that-ke"
    cut_at_dash = slugify("abcdefghijklmnopqrstuvwxyz123 4567")  # the 30th character is a dash
    assert cut_at_dash == "abcdefghijklmnopqrstuvwxyz123"
    assert not cut_at_dash.endswith("-")


@pytest.mark.parametrize("name", ["", "   ", "🙂🙂", "李小龙", "---", None, "!!!"])
def test_names_without_latin_letters_or_digits_are_refused(name):
    with pytest.raises(ValidationError) as caught:
        slugify(name)
    assert "name" in caught.value.errors


@pytest.mark.parametrize(
    ("user_email", "agent_name", "expected"),
    [
        ("root@example.com", "Nia New", "root+nia-new@example.com"),
        ("Ana.Lima@Example.COM", "Bo Li", "ana.lima+bo-li@example.com"),  # Chatwoot stores e-mails lower-cased
        ("ana+crm@acme.com", "Bo Li", "ana+bo-li@acme.com"),  # an existing +tag is replaced
        ("ana+a+b@acme.com", "Bo", "ana+bo@acme.com"),
        (" ana@acme.com ", "Bo", "ana+bo@acme.com"),
        ("ana@bücher.de", "Bo", "ana+bo@xn--bcher-kva.de"),  # IDNA form of the domain
        ("ana@sub.acme.co.uk", "José", "ana+jose@sub.acme.co.uk"),
    ],
)
def test_agent_email_plus_addressing(user_email, agent_name, expected):
    address = agent_email(user_email, agent_name)
    assert address == expected
    assert is_valid_email(address)


@pytest.mark.parametrize(
    ("user_email", "key"),
    [
        ("", "email"),
        ("no-at-sign", "email"),
        ("a@b@c.com", "email"),
        ("+tag@acme.com", "email"),  # nothing before the tag
        ("ana@localhost", "email"),  # not a valid result: a domain needs a dot
        ("ana@-acme.com", "email"),
        ("a b@acme.com", "email"),
        ("x" * 60 + "@acme.com", "name"),  # too long once the slug is added
    ],
)
def test_unusable_user_addresses_are_refused(user_email, key):
    with pytest.raises(ValidationError) as caught:
        agent_email(user_email, "Nia New")
    assert key in caught.value.errors


def test_the_agent_name_is_checked_before_the_address():
    with pytest.raises(ValidationError) as caught:
        agent_email("ana@acme.com", "🙂")
    assert "name" in caught.value.errors


@pytest.mark.parametrize(
    ("address", "valid"),
    [
        ("a+b@acme.com", True),
        ("a.b-c_d@sub.acme.io", True),
        ("a..b@acme.com", False),
        (".a@acme.com", False),
        ("a@acme", False),
        ("a@acme.123", False),
        ("a@acme..com", False),
        ("A@acme.com", False),  # results are lower-case; the check is for them
        ("a@" + "b" * 250 + ".com", False),
    ],
)
def test_is_valid_email(address, valid):
    assert is_valid_email(address) is valid


# ----- seat limits ---------------------------------------------------------------------------------------


def agent(agent_id: int, role: str = "agent", confirmed: bool = True) -> Agent:
    return Agent(agent_id, f"Agent {agent_id}", f"a{agent_id}@acme.test", role, "offline", confirmed)


OWN = 1  # the integration's own user (its token's profile)


def test_seats_count_every_agent_but_the_integrations_own_user():
    agents = [agent(OWN, "administrator"), agent(2), agent(3, "administrator"), agent(4, confirmed=False)]
    assert count_seats(agents, OWN) == 3  # administrators and unconfirmed agents count too
    assert count_seats([agent(OWN, "administrator")], OWN) == 0
    assert count_seats([], OWN) == 0
    assert count_seats([agent(2), agent(3)], 99) == 2  # own user not in the list: everyone counts


@pytest.mark.parametrize(
    ("tier", "allowed"),
    [
        (Tier.FREE, 1),
        (Tier.STARTER, 2),
        (Tier.TEAM, 3),
        (Tier.PRO_PLUS, 4),
        (Tier.BUSINESS, 5),
        (Tier.ENTERPRISE, None),
    ],
)
def test_seat_limit_per_tier(tier, allowed):
    own = [agent(OWN, "administrator")]
    if allowed is None:
        many = own + [agent(i) for i in range(2, 60)]
        usage = seat_usage(tier, many, OWN)
        assert usage.allowed is None and usage.can_add and usage.used == 58
        check_seats(tier, many, OWN)
        assert "no agent limit" in usage.message
        return
    below = own + [agent(i) for i in range(2, 2 + allowed - 1)]
    at = own + [agent(i) for i in range(2, 2 + allowed)]
    check_seats(tier, below, OWN)  # one seat left
    assert seat_usage(tier, below, OWN).can_add
    usage = seat_usage(tier.name, at, OWN)  # the tier may be given by name
    assert (usage.used, usage.allowed, usage.can_add) == (allowed, allowed, False)
    assert usage.upgrade == Tier(tier + 1)
    assert f"The {Tier(tier + 1).label} tier allows more." in usage.message
    with pytest.raises(TierLimitError) as caught:
        check_seats(tier, at, OWN)
    assert f"The {Tier(tier + 1).label} tier allows more." in str(caught.value)
    assert f"allows {allowed} helpdesk agents" in str(caught.value)


def test_over_the_limit_names_the_first_tier_that_allows_that_many():
    agents = [agent(OWN, "administrator")] + [agent(i) for i in range(2, 6)]  # 4 seats used
    usage = seat_usage(Tier.FREE, agents, OWN)
    assert usage.upgrade == Tier.BUSINESS  # 5 > 4
    with pytest.raises(TierLimitError, match="Business tier allows more"):
        check_seats(Tier.FREE, agents, OWN)


def test_a_chosen_agent_email_is_trimmed_lower_cased_and_checked():
    from core.chatwoot.helpdesk import chosen_agent_email

    assert chosen_agent_email("  Bo.Li@Shop.Example ") == "bo.li@shop.example"
    for unusable in ("", "   ", None, "bo li@shop.example", "bo@shop", "a@b@c.example", "x" * 65 + "@shop.example"):
        with pytest.raises(ValidationError) as refused:
            chosen_agent_email(unusable)
        assert set(refused.value.errors) == {"email"}
