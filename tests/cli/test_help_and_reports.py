"""Help texts name their values in words, reports say a shared error once, and every JSON
document carries its schema version."""

from __future__ import annotations

import re
from typing import Any

import pytest
import typer

from tfsconf import api
from tfsconf.apply.report import ApplyReport, HostReport, render_report
from tfsconf.cli.app import COMMANDS, build_command

PYTHON_TYPE = re.compile(r"<(path|int|float|str|bool|list\[[^>]*\]|[a-z]+\|[a-z|]+)>")


def _leaves(name: str) -> list[tuple[str, Any]]:
    command: Any = build_command(name)
    if hasattr(command, "commands"):
        return [(f"{name} {sub}", cmd) for sub, cmd in command.commands.items()]
    return [(name, command)]


@pytest.mark.parametrize("name", list(COMMANDS))
def test_help_shows_metavars_not_python_types(name: str) -> None:
    for label, command in _leaves(name):
        with typer.Context(command, info_name=label) as ctx:
            text = command.get_help(ctx)
        assert not PYTHON_TYPE.search(text), (label, PYTHON_TYPE.search(text))


def test_a_failure_shared_by_hosts_is_written_once() -> None:
    report = ApplyReport("bed", "run1", stage="preflight")
    cause = "model source webhdfs://nn:9870/models/a: connection refused"
    report.hosts = [HostReport(f"h{i}", "g", "untouched", None, 0, cause) for i in (1, 2, 3)]
    report.hosts.append(HostReport("h4", "g", "rolled-back", "r-2", 1, "health gate: boom"))
    text = render_report(report)
    assert text.count(cause) == 1
    assert text.count("(same error as h1)") == 2
    assert "health gate: boom" in text


def test_apply_and_rollback_json_carry_a_schema_version() -> None:
    report = ApplyReport("bed", "run1")
    report.hosts = [HostReport("h1", "g", "applied", "r-1", 2)]
    document = api.report_json(report)
    assert document["schema_version"] == api.REPORT_SCHEMA_VERSION == 1
    assert document["hosts"][0]["host"] == "h1"
