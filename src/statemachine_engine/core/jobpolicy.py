"""JobPolicy: how long a machine's leases run, how often they are renewed, and when a failed
job is retried; pure decisions from `options.jobs` and the command-line defaults."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field

from statemachine_engine.config.model import JobOptions
from statemachine_engine.database.records import Job

#: The shortest heartbeat period, whatever the configuration says.
MIN_HEARTBEAT = 0.05


@dataclass(frozen=True)
class JobPolicy:
    """Lease, heartbeat and retry rules per job type: a type's `options.jobs` entry where it
    sets one, else the machine's defaults. No I/O; the jitter's randomness is `rng`."""

    job_options: Mapping[str, JobOptions] = field(default_factory=dict)
    lease_seconds: float = 30.0
    backoff_base: float = 1.0
    heartbeat_seconds: float | None = None
    jitter: float = 0.0
    rng: random.Random = field(default_factory=random.Random, compare=False)

    def options(self, job_type: str | None) -> JobOptions:
        """The `options.jobs` settings for `job_type` (empty when none)."""
        found = self.job_options.get(job_type) if job_type is not None else None
        return found or JobOptions()

    def lease_for(self, job_type: str | None) -> float:
        """Lease length for a job of `job_type`."""
        lease = self.options(job_type).lease
        return self.lease_seconds if lease is None else lease

    def heartbeat_for(self, job_type: str | None) -> float:
        """How often the lease of a held job of `job_type` is renewed (a third of the lease
        unless configured)."""
        options = self.options(job_type)
        if options.heartbeat is not None:
            return max(options.heartbeat, MIN_HEARTBEAT)
        if options.lease is None and self.heartbeat_seconds is not None:
            return max(self.heartbeat_seconds, MIN_HEARTBEAT)
        return max(self.lease_for(job_type) / 3, MIN_HEARTBEAT)

    def renewal_period(self, held: Job | None) -> float:
        """How long until the next lease renewal: the held job's heartbeat; holding none,
        the shortest of any type, since a job of any type may be claimed meanwhile."""
        if held is not None:
            return self.heartbeat_for(held.job_type)
        return min(self.heartbeat_for(job_type) for job_type in (None, *self.job_options))

    def retry_delay(self, attempts: int, job_type: str | None = None) -> float:
        """Backoff before the next attempt after `attempts` failed ones: `backoff *
        2**(attempts-1)`, spread by a random factor in [1 - jitter, 1 + jitter]."""
        options = self.options(job_type)
        base = self.backoff_base if options.backoff is None else options.backoff
        jitter = self.jitter if options.jitter is None else options.jitter
        delay = base * 2.0 ** max(attempts - 1, 0)
        if jitter > 0:
            delay *= self.rng.uniform(1.0 - jitter, 1.0 + jitter)
        return delay

    def retry_delay_for(self, job: Job) -> float | None:
        """The backoff of `job`'s next attempt; None when `options.jobs.<type>.max_attempts`
        says this was its last one (the job's own `max_attempts` is applied by the store)."""
        cap = self.options(job.job_type).max_attempts
        if cap is not None and job.attempts >= cap:
            return None
        return self.retry_delay(job.attempts, job.job_type)
