"""The one clock of result timestamps: UTC, ISO 8601, milliseconds. The job's start and end and
the driver's record time of a result row come from here, so they compare and sort as equals."""

from __future__ import annotations

from datetime import datetime, timezone


def utc_now() -> str:
    """Now as "2026-01-31T12:00:00.123+00:00"."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")
