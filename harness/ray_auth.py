"""Ray's token authentication as a client of a cluster sees it: where this process finds the token,
turning token mode on when a token is there (as Ray's own clients do), and the one line that says
why a head refused us and which setting fixes it.

Ray 2.60 sends a token only when RAY_AUTH_MODE=token, and takes it from RAY_AUTH_TOKEN (the token
itself), else the file named by RAY_AUTH_TOKEN_PATH, else ~/.ray/auth_token. `ray start` and
`ray.init(address="auto")` turn token mode on by themselves when RAY_AUTH_MODE is unset and a token
is found; `ray.init(address="HOST:PORT")` never does, so a driver given --address to a head that
`ray start --head` started with token authentication on (its default once a token exists, and Ray
writes ~/.ray/auth_token on a user's first local `ray.init`) was refused once a second for 20 s.
`use_found_token` does for an explicit address what Ray does for "auto".

Light on purpose (no ray import at the top): the CLI calls it before Ray is imported.
"""

from __future__ import annotations

import os
import sys
from collections.abc import MutableMapping
from pathlib import Path

AUTH_MODE_ENV = "RAY_AUTH_MODE"
TOKEN_ENV = "RAY_AUTH_TOKEN"
TOKEN_PATH_ENV = "RAY_AUTH_TOKEN_PATH"
DEFAULT_TOKEN_FILE = "~/.ray/auth_token"


def token_source(environ: MutableMapping[str, str] | None = None) -> str:
    """Where Ray would read this process's token, in Ray's order, or "" when there is none."""
    env = os.environ if environ is None else environ
    if env.get(TOKEN_ENV):
        return TOKEN_ENV
    if env.get(TOKEN_PATH_ENV):
        return f"{TOKEN_PATH_ENV}={env[TOKEN_PATH_ENV]}"
    home = env.get("HOME") or str(Path.home())
    token_file = Path(home) / ".ray" / "auth_token"
    return DEFAULT_TOKEN_FILE if token_file.is_file() and token_file.stat().st_size > 0 else ""


def token_mode(environ: MutableMapping[str, str] | None = None) -> bool:
    """Whether this process sends a token (RAY_AUTH_MODE=token)."""
    env = os.environ if environ is None else environ
    return env.get(AUTH_MODE_ENV, "").lower() == "token"


def use_found_token(environ: MutableMapping[str, str] | None = None) -> bool:
    """RAY_AUTH_MODE=token when it is unset and a token is found (what `ray start` and
    `ray.init("auto")` do); an explicit RAY_AUTH_MODE is left as it is. Returns whether a token
    will be sent. A token sent to a head without authentication is ignored there, so this never
    breaks a connection that worked without it."""
    env = os.environ if environ is None else environ
    if AUTH_MODE_ENV not in env and token_source(env):
        env[AUTH_MODE_ENV] = "token"
        if env is os.environ and "ray._raylet" in sys.modules:  # Ray caches its settings: re-read them
            from ray._raylet import Config  # type: ignore[attr-defined]  # compiled: its stub names only part of it

            Config.initialize("")
    return token_mode(env)


def refused(address: str, environ: MutableMapping[str, str] | None = None) -> str:
    """One line: the head at `address` refused this client's authentication, and the fix."""
    env = os.environ if environ is None else environ
    where = f"{TOKEN_ENV}, {TOKEN_PATH_ENV} or {DEFAULT_TOKEN_FILE}"
    if not token_mode(env):
        return (
            f"the Ray head at {address} requires token authentication and this client sent no token: "
            f"set {AUTH_MODE_ENV}=token and give the head's token in {where}"
        )
    source = token_source(env)
    if not source:
        return (
            f"{AUTH_MODE_ENV}=token is set but no token was found for the Ray head at {address}: give the head's token in {where}"
        )
    return f"the Ray head at {address} refused the token from {source}: give the token the head was started with, in {where}"
