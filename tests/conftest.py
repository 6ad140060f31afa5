"""Test-wide settings: never touch the network, keep CPU threads bounded; and the learning test's
jobs, started when collection ends and computed beside the other tests (tests/learning.py)."""

from __future__ import annotations

import os

import pytest

from tests import learning

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("RAY_DEDUP_LOGS", "0")

LEARNING = pytest.StashKey[learning.LearningRuns]()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The learning tests go last, so their background jobs have the whole run to compute in."""
    items.sort(key=lambda item: item.get_closest_marker("learning") is not None)  # stable: order kept otherwise


def pytest_collection_finish(session: pytest.Session) -> None:
    if any(item.get_closest_marker("learning") for item in session.items):
        session.config.stash[LEARNING] = learning.start()


def pytest_sessionfinish(session: pytest.Session) -> None:
    runs = session.config.stash.get(LEARNING, None)
    if runs is not None:
        runs.close()


@pytest.fixture(scope="session")
def learning_runs(request: pytest.FixtureRequest) -> dict[str, dict[str, float]]:
    """The smoke jobs' metrics per category (tests/learning.py), waiting for any still computing."""
    return request.config.stash[LEARNING].results()
