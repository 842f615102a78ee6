"""The one rule that moves health, and the schedule's intervals and jitter."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import pytest

from core import tiers
from core.integrations import schedule
from core.integrations.health import Health, HealthPolicy, Streak, after_check, recovered, worsened

NOW = datetime(2026, 12, 1, 12, 0, 0)
POLICY = HealthPolicy(
    failing_after_checks=3,
    failing_after=timedelta(hours=1),
    pause_after=timedelta(days=7),
    pause_after_checks=30,
    recover_after_checks=2,
)


def run(outcomes: list[bool], start: Health = Health.CONNECTED, step=timedelta(minutes=5), refused=False):
    streak, states, now = Streak(start, 0, 0, None), [], NOW
    for ok in outcomes:
        streak = after_check(streak, ok, refused and not ok, now, POLICY)
        states.append(streak.health)
        now += step
    return states, streak


def test_failures_degrade_then_fail_after_n_in_a_row():
    states, streak = run([False, False, False, False])
    assert states == [Health.DEGRADED, Health.DEGRADED, Health.FAILING, Health.FAILING]
    assert streak.failures_in_row == 4 and streak.failing_since == NOW


def test_failing_for_t_is_failing_even_with_few_checks():
    states, _ = run([False, False], step=timedelta(hours=2))  # a daily-checked integration, say
    assert states == [Health.DEGRADED, Health.FAILING]


def test_paused_only_after_both_d_and_m_failures():
    states, _ = run([False] * 29, step=timedelta(days=1))
    assert states[-1] is Health.FAILING  # 29 failures over 28 days: not yet 30
    states, streak = run([False] * 31, step=timedelta(hours=6))
    assert Health.PAUSED not in states[:28]  # 30 failures but only 7 days at the 29th
    assert states[-1] is Health.PAUSED and streak.paused_now


def test_k_successes_recover_and_one_is_not_enough():
    states, _ = run([False, False, False, True, True])
    assert states[-2:] == [Health.FAILING, Health.CONNECTED]


def test_a_success_between_failures_restarts_the_streak():
    _, streak = run([False, False, True, False])
    assert streak.failures_in_row == 3  # K=2: the lone success did not recover it, the streak goes on
    _, streak = run([False, True, True, False])
    assert streak.health is Health.DEGRADED and streak.failures_in_row == 1


def test_a_refused_credential_needs_reconnect_at_once_and_other_failures_keep_it_so():
    states, _ = run([False], refused=True)
    assert states == [Health.NEEDS_RECONNECT]
    streak = after_check(Streak(Health.NEEDS_RECONNECT, 1, 0, NOW), False, False, NOW, POLICY)
    assert streak.health is Health.NEEDS_RECONNECT


def test_a_paused_integration_stays_paused_whatever_a_manual_test_says():
    for ok in (True, False):
        assert after_check(Streak(Health.PAUSED, 3, 0, NOW), ok, False, NOW, POLICY).health is Health.PAUSED


def test_worsened_and_recovered():
    assert worsened(Health.CONNECTED, Health.DEGRADED) and worsened(Health.FAILING, Health.PAUSED)
    assert not worsened(Health.FAILING, Health.DEGRADED) and not worsened(Health.PAUSED, Health.NEEDS_RECONNECT)
    assert recovered(Health.FAILING, Health.CONNECTED) and recovered(Health.UNKNOWN, Health.CONNECTED)
    assert not recovered(Health.CONNECTED, Health.CONNECTED)
    assert Health.parse("nonsense") is Health.UNKNOWN and Health.parse(None) is Health.UNKNOWN


@pytest.mark.parametrize("tier", list(tiers.Tier))
def test_every_tier_has_an_interval_and_higher_tiers_are_checked_more_often(tier):
    interval = schedule.interval_for(tier.name, Health.CONNECTED)
    assert interval == timedelta(seconds=tiers.CHECK_INTERVAL_SECONDS[tier])
    if tier > tiers.Tier.FREE:
        assert interval < schedule.interval_for(tiers.Tier(tier - 1).name, Health.CONNECTED)


def test_needs_reconnect_is_rechecked_at_most_every_six_hours_and_the_override_wins():
    assert schedule.interval_for("ENTERPRISE", Health.NEEDS_RECONNECT) == timedelta(hours=6)
    assert schedule.interval_for("FREE", Health.NEEDS_RECONNECT) == timedelta(hours=24)
    assert schedule.interval_for("FREE", Health.CONNECTED, override_seconds=2) == timedelta(seconds=2)
    assert schedule.interval_for("NO SUCH TIER", Health.CONNECTED) == timedelta(hours=24)


def test_jitter_spreads_checks_within_ten_percent_and_first_checks_over_the_interval():
    rng = random.Random(7)
    interval = timedelta(minutes=10)
    nexts = [schedule.next_due(NOW, interval, rng) - NOW for _ in range(200)]
    assert min(nexts) >= interval * 0.9 and max(nexts) <= interval * 1.1
    assert max(nexts) - min(nexts) > interval * 0.1
    firsts = [schedule.first_due(NOW, interval, rng) - NOW for _ in range(200)]
    assert min(firsts) < interval * 0.1 and max(firsts) > interval * 0.9
