"""The revision of what a result means: one number, bumped whenever the network, the loss, the
anomaly simulation, the training recipe's semantics or the metrics change, so that results made
by two different models are never counted as one (README, "What a result means").

A leaf module: anything may import it, it imports nothing of the project.
"""

from __future__ import annotations

REVISION = 2

# What each revision changed, newest last. Rows written before revisions were recorded carry no
# revision; they are read as revision 1 (LEGACY_REVISION).
LEGACY_REVISION = 1
HISTORY: dict[int, str] = {
    1: "Every result written before revisions were recorded (up to main 695c6d8): the pre-issue-10 network "
    "and the official network of issue 10 alike; only their git_sha tells them apart.",
    2: "The official network (issue 10), the smoke profile at lr 1e-2; the first revision recorded in every row and checkpoint.",
}
