"""The error hierarchy, mapped to exit codes in exactly one place (tfsconf.cli.app).

- UserError: the user can fix it (bad input, missing file); printed without traceback, exit 1.
- SpecError: a spec failed validation; carries every diagnostic found in one run.
- InternalError: a bug in tfsconf; printed with its traceback.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tfsconf.diagnostics import Diagnostic


class TfsconfError(Exception):
    """Root of every error tfsconf raises on purpose."""


class UserError(TfsconfError):
    """A problem the user caused and can fix; the message says what and where."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if self.hint is None else f"{self.message}\nhint: {self.hint}"


class SpecError(UserError):
    """An environment spec failed validation; holds every diagnostic of the run."""

    def __init__(
        self, *, diagnostics: Sequence[Diagnostic], what: str = "the environment spec"
    ) -> None:
        errors = [d for d in diagnostics if d.severity == "error"]
        super().__init__(f"{len(errors)} error(s) in {what}")
        self.diagnostics = tuple(diagnostics)


class InternalError(TfsconfError):
    """A bug in tfsconf: reported with its traceback."""
