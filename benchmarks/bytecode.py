"""The environment benchmark subprocesses run in, with or without cached bytecode.

Some shells (CI images, sandboxes) export PYTHONDONTWRITEBYTECODE=1, and an editable
install then recompiles every tfsconf module from source on each run, a cost a user who
installed the wheel (bytecode compiled at install) never pays. "cached" measures what that
user sees without writing into the source tree: bytecode goes to a private
PYTHONPYCACHEPREFIX, filled by the untimed warm-up run. "as-is" inherits the caller's
environment unchanged.
"""

from __future__ import annotations

import os
from pathlib import Path

MODES = ("cached", "as-is")
BYTECODE_HELP = (
    "cached (default): as an installed package runs, bytecode in a private cache; "
    "as-is: the caller's environment (PYTHONDONTWRITEBYTECODE honoured)"
)


def child_env(mode: str, cache_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    if mode == "cached":
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(cache_dir)
    elif mode != "as-is":
        raise ValueError(f"bytecode mode must be one of {MODES}, not {mode!r}")
    return env


def describe(mode: str) -> str:
    if mode == "cached":
        return "bytecode cached (private PYTHONPYCACHEPREFIX, filled by the warm-up run)"
    skip = os.environ.get("PYTHONDONTWRITEBYTECODE")
    note = f"; PYTHONDONTWRITEBYTECODE={skip}: sources recompiled each run" if skip else ""
    return f"environment as-is{note}"
