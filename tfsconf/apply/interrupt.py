"""SIGINT and SIGTERM during a rollout.

The first signal asks for a clean stop: the host in flight finishes, or is rolled back at
its next safe point (before `current` moves), no new host starts, the locks are released
and the report is printed. The playbooks see the request as a file (`stop_file`), checked
before each host and before its switch. A second signal aborts: the running playbook is
killed where it stands and tfsconf says what that leaves behind.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any


class Aborted(Exception):
    """A second signal: the rollout was killed where it stood."""


class Interrupt:
    def __init__(self, stream: Any = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        fd, name = tempfile.mkstemp(prefix="tfsconf-stop-")
        os.close(fd)
        os.unlink(name)  # the file exists only once a stop is asked for
        self.stop_file = Path(name)
        self.signal_name = ""
        self.aborting = False
        self._saved: dict[int, Any] = {}

    @property
    def stopping(self) -> bool:
        return bool(self.signal_name)

    def aborted(self) -> bool:
        """ansible-runner's cancel callback: True kills the running playbook."""
        return self.aborting

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if not self.signal_name:
            self.signal_name = name
            self.stop_file.write_text(name + "\n")
            self.stream.write(
                f"\n{name}: stopping: the host in flight finishes or is rolled back, no new "
                "host starts, then the locks are released (send it again to abort at once)\n"
            )
        elif not self.aborting:
            self.aborting = True
            self.stream.write(f"\n{name} again: aborting now\n")
        self.stream.flush()

    @contextlib.contextmanager
    def installed(self) -> Iterator[Interrupt]:
        """Handle SIGINT and SIGTERM (main thread only) while the block runs."""
        for signum in (signal.SIGINT, signal.SIGTERM):
            self._saved[int(signum)] = signal.signal(signum, self._handle)
        try:
            yield self
        finally:
            for number, previous in self._saved.items():
                signal.signal(number, previous)
            self._saved.clear()
            with contextlib.suppress(FileNotFoundError):
                self.stop_file.unlink()
