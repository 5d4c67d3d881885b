"""JobPolicy: lease, heartbeat and retry rules per job type, without a store or a clock."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from statemachine_engine.config.model import JobOptions
from statemachine_engine.core.jobpolicy import MIN_HEARTBEAT, JobPolicy
from statemachine_engine.database.records import Job

OPTIONS = {
    "render": JobOptions(lease=12, max_attempts=2, backoff=0.5, jitter=0.25),
    "beat": JobOptions(heartbeat=0.7),
    "tiny": JobOptions(heartbeat=0.001),
}


def job(job_type: str, attempts: int) -> Job:
    return Job("j", job_type, None, "processing", 5, attempts, max_attempts=10, created_at=0.0)


def test_a_type_without_options_gets_the_defaults() -> None:
    policy = JobPolicy(OPTIONS, lease_seconds=30.0)
    assert policy.options("other") == JobOptions()
    assert policy.options(None) == JobOptions()
    assert policy.lease_for("other") == policy.lease_for(None) == 30.0
    assert policy.lease_for("render") == 12


def test_the_heartbeat_is_a_third_of_the_lease_unless_configured() -> None:
    policy = JobPolicy(OPTIONS, lease_seconds=30.0)
    assert policy.heartbeat_for("other") == 10.0
    assert policy.heartbeat_for("render") == 4.0
    assert policy.heartbeat_for("beat") == 0.7
    assert policy.heartbeat_for("tiny") == MIN_HEARTBEAT


def test_the_heartbeat_flag_does_not_apply_to_a_type_with_its_own_lease() -> None:
    policy = JobPolicy(OPTIONS, lease_seconds=30.0, heartbeat_seconds=5.0)
    assert policy.heartbeat_for("other") == 5.0
    assert policy.heartbeat_for("render") == 4.0
    assert JobPolicy(heartbeat_seconds=0.0).heartbeat_for(None) == MIN_HEARTBEAT


def test_holding_nothing_renews_as_often_as_the_most_eager_type() -> None:
    policy = JobPolicy({"render": OPTIONS["render"], "beat": OPTIONS["beat"]}, lease_seconds=30)
    assert policy.renewal_period(None) == 0.7
    assert policy.renewal_period(job("render", 1)) == 4.0
    assert JobPolicy(lease_seconds=30).renewal_period(None) == 10.0


def test_the_backoff_doubles_per_failed_attempt() -> None:
    policy = JobPolicy(OPTIONS, backoff_base=0.1)
    assert [policy.retry_delay(n) for n in (0, 1, 2, 3)] == [0.1, 0.1, 0.2, 0.4]
    assert policy.retry_delay(1, "render") == pytest.approx(0.5, rel=0.25)


@given(attempts=st.integers(1, 20), seed=st.integers(0, 2**32), jitter=st.floats(0.0, 0.99))
def test_the_jitter_stays_within_its_band(attempts: int, seed: int, jitter: float) -> None:
    policy = JobPolicy(backoff_base=1.0, jitter=jitter, rng=random.Random(seed))
    nominal = 2.0 ** (attempts - 1)
    delay = policy.retry_delay(attempts)
    assert nominal * (1 - jitter) <= delay <= nominal * (1 + jitter)


def test_the_type_s_max_attempts_ends_the_retries() -> None:
    policy = JobPolicy(OPTIONS, backoff_base=0.1)
    assert policy.retry_delay_for(job("render", 1)) is not None
    assert policy.retry_delay_for(job("render", 2)) is None
    assert policy.retry_delay_for(job("other", 9)) == pytest.approx(0.1 * 2**8)


def test_the_same_seed_gives_the_same_delays() -> None:
    first = JobPolicy(OPTIONS, rng=random.Random(3))
    second = JobPolicy(OPTIONS, rng=random.Random(3))
    assert [first.retry_delay(2, "render") for _ in range(5)] == [
        second.retry_delay(2, "render") for _ in range(5)
    ]
