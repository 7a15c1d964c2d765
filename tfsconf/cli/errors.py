"""The one place where exceptions become messages and exit codes."""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable
from functools import wraps
from typing import ParamSpec

from tfsconf.diagnostics import sort_diagnostics
from tfsconf.errors import SpecError, UserError
from tfsconf.secrets import mask

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
                print(mask(diagnostic.render()), file=sys.stderr)
            print(f"error: {mask(exc.message)}", file=sys.stderr)
            return EXIT_ERROR
        except UserError as exc:
            print(f"error: {mask(str(exc))}", file=sys.stderr)
            return EXIT_ERROR
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return 130
        except Exception:  # InternalError, and any bug: never reported as a user error
            print(mask(traceback.format_exc()), end="", file=sys.stderr)
            print("error: internal error in tfsconf (a bug): please report it", file=sys.stderr)
            return EXIT_INTERNAL

    return wrapper
