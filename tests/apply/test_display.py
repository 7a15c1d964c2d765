"""The live apply display (tfsconf.apply.display.Progress) in an 80-column terminal and
in a log: long failure lines, failures reported again by later events, many hosts.

The terminal cases are checked twice: through rich's own recording console (what was
printed, without the cursor movements), and through pyte, a VT100 emulator, which applies
the cursor movements the way a terminal does, so a smeared or repeated line shows up on its
screen as it would on the operator's.
"""

from __future__ import annotations

import io
import re

import pyte
from rich.console import Console

from tfsconf.apply.display import Progress

WIDTH = 80
LONG = (
    "sync models: /srv/tfserving/models/ctr/1043/variables/variables.data-00000-of-00001: "
    "checksum mismatch after download from https://models.example.com/ctr/1043/ (expected "
    "9f2c... got 0000...): the source changed while it was copied END-OF-H3"
)
HOSTS = [f"rank-{n:02d}" for n in range(1, 7)]


def _scenario(progress: Progress) -> None:
    """Ansible's events for a preflight and a rollout in which rank-03 fails with a long
    message; the same failure is reported again (a retry's event, the rollout's own
    report), then the rescue rolls it back and fails the host."""
    progress("", "preflight", "play")
    for host in HOSTS:
        progress(host, "check the host", "started")
        progress(host, "check the host", "ok")
    progress("", "rollout", "play")
    for step in ("stage the release", "sync models"):
        for host in HOSTS:
            progress(host, step, "started")
            if host == "rank-03" and step == "sync models":
                for _ in range(5):
                    progress(host, step, f"failed: {LONG}")
            else:
                progress(host, step, "changed")
    progress("rank-03", "roll back", "ok")
    progress("rank-03", "fail the host (rolled back)", f"failed: rolled back: {LONG[:40]}")
    for host in HOSTS:
        if host != "rank-03":
            progress(host, "report applied", "ok")
    progress.close()


def test_plain_lines_when_stderr_is_not_a_terminal() -> None:
    stream = io.StringIO()
    progress = Progress(stream)

    _scenario(progress)

    out = stream.getvalue()
    assert not progress.live
    assert "\x1b" not in out
    lines = out.splitlines()
    assert lines[0] == "== preflight"
    assert "  [rank-01] check the host: ok" in lines
    assert "  [rank-02] sync models: changed" in lines
    assert lines.count(f"  [rank-03] sync models: failed: {LONG}") == 1
    assert sum("END-OF-H3" in line for line in lines) == 1
    assert "  [rank-03] fail the host (rolled back): failed: rolled back: sync models" in out
    assert not any("started" in line or "running" in line for line in lines)
    assert len(lines) == 2 + 6 + 6 * 2 + 2 + 5


def test_recorded_terminal_80_columns_shows_each_failure_once() -> None:
    console = Console(record=True, width=WIDTH, height=24, force_terminal=True, file=io.StringIO())
    progress = Progress(console=console)
    progress("", "rollout", "play")
    progress("rank-01", "sync models", "changed")
    progress("rank-03", "sync models", f"failed: {LONG}")

    # the live block: one line per host, cut to the width
    block = [
        "".join(segment.text for segment in line)
        for line in console.render_lines(progress.block(), pad=False)
    ]
    assert block == ["  [rank-01] sync models: changed", "  [rank-03] sync models: failed (above)"]
    progress("rank-02", f"sync models of {'a-very-long-model-name-' * 6}", "changed")
    widths = [
        sum(len(segment.text) for segment in line)
        for line in console.render_lines(progress.block(), pad=False)
    ]
    assert max(widths) == WIDTH

    _scenario(progress)

    assert progress.live
    text = console.export_text()
    # printed whole, wrapped at 80, once however often it was reported
    assert text.count("END-OF-H3") == 1
    wrapped = [line for line in text.splitlines() if "checksum" in line or "END-OF-H3" in line]
    assert wrapped and all(len(line) <= WIDTH for line in wrapped), wrapped
    assert LONG.rsplit(" ", 3)[-3] in text
    # the host's own line says where to look instead of repeating the message
    assert "[rank-03] sync models: failed (above)" in text


def _screen(raw: str) -> list[str]:
    screen = pyte.Screen(WIDTH, 24)
    pyte.Stream(screen).feed(raw.replace("\n", "\r\n"))
    return [line.rstrip() for line in screen.display]


def test_terminal_screen_after_a_long_failure_is_not_smeared() -> None:
    stream = io.StringIO()
    console = Console(file=stream, width=WIDTH, height=24, force_terminal=True)
    progress = Progress(console=console)

    _scenario(progress)

    screen = _screen(stream.getvalue())
    shown = "\n".join(screen)
    assert shown.count("END-OF-H3") == 1, shown
    # after the preflight block, the rollout: rank-03's two failures (the cause, then the
    # rollback's own), then the block, each host's line once with its last step
    rollout = screen[screen.index("== rollout") :]
    for host in HOSTS:
        rows = [line for line in rollout if line.startswith(f"  [{host}]")]
        assert len(rows) == (3 if host == "rank-03" else 1), (host, shown)
    assert rollout[1] == "  [rank-03] sync models: failed: sync models:"
    assert rollout[4].endswith("END-OF-H3")
    assert "  [rank-01] report applied: ok" in rollout
    assert any(
        re.fullmatch(r"  \[rank-03\] fail the host \(rolled back\): failed \(above\)", r)
        for r in rollout
    )


def test_many_hosts_fit_the_terminal() -> None:
    stream = io.StringIO()
    console = Console(file=stream, width=WIDTH, height=12, force_terminal=True)
    progress = Progress(console=console)
    hosts = [f"gpu-{n:03d}" for n in range(40)]

    progress("", "rollout", "play")
    for host in hosts:
        progress(host, "sync models", "changed")
    progress(hosts[7], "health gate", "failed: version 1043 of ctr not AVAILABLE after 300 s")
    progress.close()

    screen = _screen(stream.getvalue())
    # 12 lines: the header, the failure, and a block of the hosts updated last plus a count
    assert sum("not AVAILABLE after 300 s" in line for line in screen) == 1
    assert any(
        re.fullmatch(r"  \.\.\. and \d+ more hosts \(\d+ changed\)", line) for line in screen
    )
    assert "  [gpu-007] health gate: failed (above)" in screen
