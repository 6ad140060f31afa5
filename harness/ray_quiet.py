"""Ray's start-up notice about token authentication, replaced by one line of ours for the local
cluster the harness starts itself. Ray 2.60 logs it from `ray.init()` (a new local cluster turns
token authentication on and warns, with a link) on the logger named below; the filter drops that
record only, only while our `ray.init` runs. A user's cluster (--address) keeps every Ray message.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from harness.ray_auth import token_mode

TOKEN_LOGGER = "ray._private.authentication.authentication_token_setup"
TOKEN_NOTICE = "Token authentication is enabled"


class _DropTokenNotice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(TOKEN_NOTICE)


@contextlib.contextmanager
def quiet_token_notice() -> Iterator[None]:
    """Drop Ray's token-authentication notice for the duration of the block."""
    logger = logging.getLogger(TOKEN_LOGGER)
    notice_filter = _DropTokenNotice()
    logger.addFilter(notice_filter)
    try:
        yield
    finally:
        logger.removeFilter(notice_filter)


def local_cluster_note() -> str:
    """Our one line about the local cluster just started: its authentication and the addresses
    its nodes listen on (read from Ray, so the line cannot claim what is not so)."""
    import ray  # start-up time: status and report import the CLI but never ray

    addresses = sorted({str(n.get("NodeManagerAddress", "?")) for n in ray.nodes() if n.get("Alive")})
    auth = "token authentication" if token_mode() else "no authentication"
    where = "127.0.0.1 only" if addresses == ["127.0.0.1"] else ", ".join(addresses)
    return f"local Ray cluster started for this run: {auth}, listening on {where}"
