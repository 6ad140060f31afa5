"""Results of different revisions are never averaged together: `split` is the one check that every
view of stored rows (the run's summary, `report` in every format, `compare`) calls before it
aggregates, and `dirty_warning` the one line that says some rows came from uncommitted code.
"""

from __future__ import annotations

import pandas as pd

from memseg import revision as code_revision
from memseg.cli_errors import UserError

COLUMN = "revision"


class MixedRevisions(UserError, ValueError):
    """Rows of several revisions would be averaged together."""


def counts(rows: pd.DataFrame) -> dict[int, int]:
    """Revision -> number of rows, oldest first."""
    if rows.empty or COLUMN not in rows:
        return {}
    found = rows[COLUMN].astype("int64").value_counts().sort_index()
    return {int(r): int(n) for r, n in zip(found.index.tolist(), found.tolist())}


def describe(found: dict[int, int]) -> str:
    """ "revision 1: 4 rows, revision 99 (newer than this code's 5): 6 rows": a row made by a later
    checkout than this one is newer, never an old row to re-run."""
    current = code_revision.REVISION
    newer = f" (newer than this code's {current})"
    return ", ".join(f"revision {r}{newer if r > current else ''}: {n} row{'s' if n != 1 else ''}" for r, n in found.items())


def split(rows: pd.DataFrame, by_revision: bool = False, what: str = "the results") -> list[tuple[int | None, pd.DataFrame]]:
    """The rows as (revision, rows) groups, oldest first: one group when they share a revision (or
    there are none: revision None). Rows of several revisions: one group each with `by_revision`,
    else MixedRevisions naming each revision and its row count."""
    found = counts(rows)
    if len(found) <= 1:
        return [(next(iter(found), None), rows)]
    if not by_revision:
        raise MixedRevisions(
            f"{what} hold rows of {len(found)} revisions ({describe(found)}); they are never averaged together: "
            "give --by-revision to see each revision apart, or re-run the rows of the other revisions with `harness run` "
            "(docs/results.md, 'What a result means')"
        )
    return [(revision, rows[rows[COLUMN] == revision]) for revision in found]


def dirty_warning(rows: pd.DataFrame) -> str:
    """One line when some rows were made by a checkout with uncommitted changes; "" otherwise."""
    if rows.empty or "git_dirty" not in rows:
        return ""
    dirty = rows["git_dirty"].fillna(False).astype(bool)
    if not dirty.any():
        return ""
    shas = sorted({str(s)[:10] for s in rows.loc[dirty, "git_sha"] if s})
    return (
        f"{int(dirty.sum())} of {len(rows)} result(s) came from a checkout with uncommitted changes"
        + (f" (on top of {', '.join(shas)})" if shas else "")
        + ": their code is not in any commit"
    )
