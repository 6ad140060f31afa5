"""The ETA from step rates (harness.eta): None until a rate is known, then the longest job or the
total work over the parallel slots; the tracker turns the driver's events into those inputs."""

from __future__ import annotations

import pytest

from harness.eta import EtaTracker, JobRemaining, estimate_eta, format_eta
from harness.progress import JobFinished, JobProgressed, SweepStarted
from memseg.result import Progress


def test_no_rate_known_means_estimating() -> None:
    assert estimate_eta([JobRemaining(100, None)], [100, 100], slots=2) is None
    assert format_eta(None) == "estimating"


def test_total_work_spread_over_the_slots() -> None:
    # Two running jobs at 10 steps/s with 50 and 100 steps left (5 s, 10 s), two pending jobs of
    # 100 steps (10 s each): 35 s of work on 2 slots = 17.5 s, longer than any single job.
    running = [JobRemaining(50, 10.0), JobRemaining(100, 10.0)]
    assert estimate_eta(running, [100, 100], slots=2) == pytest.approx(17.5)


def test_a_single_slow_job_bounds_the_estimate_from_below() -> None:
    # Plenty of slots: the answer is the slowest job, not the total work divided by 8.
    running = [JobRemaining(100, 1.0), JobRemaining(10, 10.0)]
    assert estimate_eta(running, [], slots=8) == pytest.approx(100.0)


def test_jobs_without_a_rate_run_at_the_median_known_rate() -> None:
    running = [JobRemaining(40, None), JobRemaining(0, 4.0)]
    assert estimate_eta(running, [40], slots=1, rates=[2.0, 4.0]) == pytest.approx((10 + 10) / 1)


def test_tracker_estimates_from_the_first_train_report() -> None:
    tracker = EtaTracker(steps={"a": 100, "b": 100, "c": 100})
    tracker.apply(SweepStarted("s", 3, ("a", "b", "c"), (), (), None, capacity=2), now=0.0)
    tracker.apply(JobProgressed("a", Progress("memory", 0, 1)), now=1.0)
    assert tracker.estimate() is None
    tracker.apply(JobProgressed("a", Progress("train", 10, 100)), now=3.0)  # 10 steps in 2 s: 5 steps/s
    # a: 90 steps left = 18 s; b and c pending: 20 s each; 58 s over 2 slots = 29 s.
    assert tracker.estimate() == pytest.approx(29.0)
    tracker.apply(JobFinished("a", "ok", "", 1, 30.0), now=30.0)
    assert tracker.estimate() == pytest.approx(20.0)  # b and c at a's rate, side by side
    assert format_eta(3725.2) == "1:02:05"
