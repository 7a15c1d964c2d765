"""The one place where exceptions become messages and exit codes."""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable
from functools import wraps
from typing import ParamSpec

from tfsconf.diagnostics import sort_diagnostics
from tfsconf.errors import SpecError, UserError

P = ParamSpec("P")

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CHANGES = 2
EXIT_INTERNAL = 70


def handle_errors(func: Callable[P, int]) -> Callable[P, int]:
    """Run a command body; map tfsconf's errors to stderr text and an exit code."""

    @wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> int:
        try:
            return func(*args, **kwargs)
        except SpecError as exc:
            for diagnostic in sort_diagnostics(exc.diagnostics):
                print(diagnostic.render(), file=sys.stderr)
            print(f"error: {exc.message}", file=sys.stderr)
            return EXIT_ERROR
        except UserError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_ERROR
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return 130
        except Exception:  # InternalError, and any bug: never reported as a user error
            traceback.print_exc()
            print("error: internal error in tfsconf (a bug): please report it", file=sys.stderr)
            return EXIT_INTERNAL

    return wrapper
