"""The one place where exceptions become messages and exit codes."""

from __future__ import annotations

import enum
import sys
import traceback
from collections.abc import Callable
from functools import wraps
from typing import ParamSpec

from tfsconf.diagnostics import sort_diagnostics
from tfsconf.errors import SpecError, UserError
from tfsconf.secrets import mask

P = ParamSpec("P")


class ExitCode(enum.IntEnum):
    """Every exit status tfsconf gives. 2 is reserved for "there are changes" (plan,
    status), so usage errors exit 1, never click's 2."""

    OK = 0
    ERROR = 1
    """A user error, an invalid spec, a stale build or plan, a failed apply or rollback."""
    CHANGES = 2
    """plan: the plan has changes; status: the hosts drift from the spec."""
    INTERNAL = 70
    """A bug in tfsconf (EX_SOFTWARE), reported with its traceback."""
    INTERRUPTED = 130
    """Ctrl-C (128 + SIGINT)."""


def handle_errors(func: Callable[P, ExitCode]) -> Callable[P, ExitCode]:
    """Run a command body; map tfsconf's errors to stderr text and an exit code."""

    @wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> ExitCode:
        try:
            return func(*args, **kwargs)
        except SpecError as exc:
            for diagnostic in sort_diagnostics(exc.diagnostics):
                print(mask(diagnostic.render()), file=sys.stderr)
            print(f"error: {mask(exc.message)}", file=sys.stderr)
            return ExitCode.ERROR
        except UserError as exc:
            print(f"error: {mask(str(exc))}", file=sys.stderr)
            return ExitCode.ERROR
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return ExitCode.INTERRUPTED
        except Exception:  # InternalError, and any bug: never reported as a user error
            print(mask(traceback.format_exc()), end="", file=sys.stderr)
            print("error: internal error in tfsconf (a bug): please report it", file=sys.stderr)
            return ExitCode.INTERNAL

    return wrapper
