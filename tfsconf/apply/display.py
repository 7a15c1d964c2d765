"""The progress display of apply and rollback on stderr, built on rich.

On a terminal: a live block of one line per host (its last step), redrawn in place by
rich.live and cut to the terminal's width, so a long line cannot wrap and leave copies of
itself behind; a failure is printed once, whole and wrapped, above the block. A finished
play leaves its block as plain lines. Not on a terminal (CI logs, pipes): plain lines,
each failure once.

Progress events come from the Ansible event stream (tfsconf.apply.ansible): (host, task,
outcome), outcome being play, started, skipped, ok, changed, ignored, or "failed: <msg>" /
"unreachable: <msg>".
"""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console, RenderableType
    from rich.live import Live

_FAILED = ("failed", "unreachable")
_STYLES = {"changed": "yellow", "ok": "green", "ignored": "dim", "running": "cyan"}


class Progress:
    """A callable progress sink: `progress(host, task, outcome)`; close() when the run ends
    (or use it as a context manager)."""

    def __init__(
        self,
        stream: IO[str] | None = None,
        *,
        live: bool | None = None,
        console: Console | None = None,
    ) -> None:
        self.stream: IO[str] = stream if stream is not None else sys.stderr
        if console is not None:
            self.live = console.is_terminal if live is None else live
        else:
            self.live = self.stream.isatty() if live is None else live
        self._console = console
        self._live: Live | None = None
        self.rows: dict[str, tuple[str, str]] = {}
        """host -> (task, outcome) of the play in progress."""
        self._touched: dict[str, float] = {}
        self.shown: set[tuple[str, str]] = set()
        """(host, failure) pairs already shown: each failure is shown once."""

    def __call__(self, host: str, task: str, outcome: str) -> None:
        if outcome == "play":
            self._end_block()
            self._line(f"== {task}")
        elif outcome == "skipped" or (outcome == "started" and not self.live):
            return
        elif outcome.startswith(_FAILED):
            first = (host, outcome) not in self.shown
            self.shown.add((host, outcome))
            if first:
                self._line(f"  [{host}] {task}: {outcome}", style="red")
            if self.live:
                self._set_row(host, task, outcome.split(":", 1)[0] + " (above)")
        elif self.live:
            self._set_row(host, task, "running" if outcome == "started" else outcome)
        else:
            self._line(f"  [{host}] {task}: {outcome}")

    def close(self) -> None:
        """Leave the last block on screen as it is and give the terminal back."""
        self._end_block()

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # --- output -------------------------------------------------------------------------

    def console(self) -> Console:
        if self._console is None:
            from rich.console import Console

            self._console = Console(file=self.stream, force_terminal=self.live, highlight=False)
        return self._console

    def _line(self, text: str, style: str | None = None) -> None:
        """A line that stays: above the live block on a terminal, else plain."""
        if not self.live:
            self.stream.write(text + "\n")
            self.stream.flush()
            return
        from rich.text import Text

        # soft wrap at the terminal's width; rich.live keeps its block below it
        self.console().print(Text(text, style=style or ""), overflow="fold")

    def _set_row(self, host: str, task: str, outcome: str) -> None:
        self.rows[host] = (task, outcome)
        self._touched[host] = time.monotonic()
        if self._live is None:
            from rich.live import Live

            self._live = Live(
                console=self.console(),
                auto_refresh=False,
                redirect_stdout=False,
                get_renderable=self.block,
            )
            self._live.start()
        self._live.refresh()

    def _row(self, host: str) -> RenderableType:
        from rich.text import Text

        task, outcome = self.rows[host]
        style = "red" if outcome.startswith(_FAILED) else _STYLES.get(outcome, "")
        line = Text(f"  [{host}] {task}: ", no_wrap=True, overflow="ellipsis")
        line.append(outcome, style=style)
        return line

    def block(self) -> RenderableType:
        """One line per host, each cut to the width; when the hosts outnumber the
        terminal's lines, the ones updated last and a line counting the others."""
        from rich.console import Group
        from rich.text import Text

        room = max(self.console().height - 2, 3)
        hosts = sorted(self.rows)
        if len(hosts) > room:
            recent = sorted(hosts, key=lambda h: self._touched[h])[-(room - 1) :]
            rest = len(hosts) - len(recent)
            counts: dict[str, int] = {}
            for host in hosts:
                if host not in recent:
                    word = self.rows[host][1].split(" ", 1)[0]
                    counts[word] = counts.get(word, 0) + 1
            summary = ", ".join(f"{n} {word}" for word, n in sorted(counts.items()))
            more = Text(f"  ... and {rest} more hosts ({summary})", no_wrap=True)
            more.overflow = "ellipsis"
            return Group(*(self._row(h) for h in sorted(recent)), more)
        return Group(*(self._row(h) for h in hosts))

    def _end_block(self) -> None:
        if self._live is not None:
            self._live.refresh()
            self._live.stop()
            self._live = None
        self.rows.clear()
        self._touched.clear()


def stderr_line(host: str, task: str, outcome: str) -> None:
    """A plain progress line on stderr, for callers without a Progress of their own."""
    if outcome == "play":
        sys.stderr.write(f"== {task}\n")
    elif outcome not in ("skipped", "started"):
        sys.stderr.write(f"  [{host}] {task}: {outcome}\n")
