"""Every bad spec in testdata/bad/ fails with exactly the diagnostics its .expected lists.

Each case is one small, complete environment file breaking one rule (or, for the
several_* cases, several at once to prove they are all reported in one run). Its
`.expected` file holds one line per expected diagnostic:

    LINE:COL path: message-substring

The expectations are written by hand from TF Serving's rules and where the problem sits in
the file; they are deliberately not refreshed from the validator's output, so a wrong
position or path is a test failure, not a new golden file.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tfsconf.cli.app import app
from tfsconf.diagnostics import Diagnostic, format_path
from tfsconf.errors import SpecError
from tfsconf.validate.load import load_environment

BAD = Path(__file__).parent / "testdata" / "bad"
CASES = sorted(path.stem for path in BAD.glob("*.yaml"))
MIN_CASES = 35
_EXPECTED_LINE = re.compile(r"(?P<line>\d+):(?P<column>\d+) (?P<path>\S+): (?P<message>.+)")


@dataclass(frozen=True, slots=True)
class Expected:
    line: int
    column: int
    path: str
    message: str

    def matches(self, diagnostic: Diagnostic) -> bool:
        return (
            diagnostic.line == self.line
            and diagnostic.column == self.column
            and format_path(diagnostic.path) == self.path
            and self.message in diagnostic.message
        )

    def __str__(self) -> str:
        return f"{self.line}:{self.column} {self.path}: {self.message}"


def read_expected(case: str) -> list[Expected]:
    expected = []
    text = (BAD / f"{case}.expected").read_text(encoding="utf-8")
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        match = _EXPECTED_LINE.fullmatch(raw)
        assert match, f"{case}.expected:{number}: not 'LINE:COL path: message': {raw!r}"
        expected.append(
            Expected(
                line=int(match["line"]),
                column=int(match["column"]),
                path=match["path"],
                message=match["message"],
            )
        )
    return expected


def _as_expected_line(diagnostic: Diagnostic) -> str:
    where = f"{diagnostic.line}:{diagnostic.column} {format_path(diagnostic.path)}"
    return f"{where}: {diagnostic.message}  [{diagnostic.severity}]"


def _mismatch_report(
    case: str,
    missing: Sequence[Expected],
    unexpected: Sequence[Diagnostic],
    actual: Sequence[Diagnostic],
) -> str:
    lines = [f"{case}: diagnostics differ from {case}.expected"]
    lines += [f"  missing:    {item}" for item in missing]
    lines += [f"  unexpected: {_as_expected_line(d)}" for d in unexpected]
    lines.append("  all diagnostics reported:")
    lines += [f"    {_as_expected_line(d)}" for d in actual] or ["    (none)"]
    return "\n".join(lines)


def test_corpus_is_large_and_paired() -> None:
    assert len(CASES) >= MIN_CASES, f"only {len(CASES)} bad specs, want >= {MIN_CASES}"
    expected_files = sorted(path.stem for path in BAD.glob("*.expected"))
    assert expected_files == CASES, "every <case>.yaml needs a <case>.expected and vice versa"
    for case in CASES:
        assert read_expected(case), f"{case}.expected lists no diagnostics"


@pytest.mark.parametrize("case", CASES)
def test_bad_spec_reports_expected_diagnostics(case: str) -> None:
    spec = BAD / f"{case}.yaml"
    expected = read_expected(case)

    with pytest.raises(SpecError) as raised:
        load_environment(spec)

    actual = raised.value.diagnostics
    missing = [item for item in expected if not any(item.matches(d) for d in actual)]
    unexpected = [
        d for d in actual if d.severity == "error" and not any(item.matches(d) for item in expected)
    ]
    assert not missing and not unexpected, _mismatch_report(case, missing, unexpected, actual)
    assert {d.file for d in actual} == {str(spec)}


# The CLI runs in a subprocess for a sample covering every stage (YAML, schema, references,
# resolved rules, several errors at once); in-process for every case, which is much faster.
SUBPROCESS_CASES = (
    "yaml_syntax_error",
    "python_tag",
    "duplicate_yaml_key",
    "port_wrong_type",
    "missing_required_key",
    "unknown_model_on_server",
    "batch_sizes_last_not_max",
    "gpu_fractions_over_one",
    "healthcheck_flag_too_new",
    "image_tag_injection",
    "several_schema_errors",
    "several_server_rule_errors",
)


@dataclass(frozen=True, slots=True)
class CliRun:
    spec: Path
    out: Path
    exit_code: int
    stderr: str


def _check_refused(case: str, run: CliRun) -> None:
    assert run.exit_code == 1, run.stderr
    assert "Traceback" not in run.stderr, run.stderr
    assert not run.out.exists(), f"{run.out} was created for an invalid spec"
    stderr_lines = run.stderr.splitlines()
    for item in read_expected(case):
        prefix = f"{run.spec}:{item.line}:{item.column}: error: {item.path}: "
        assert any(
            line.startswith(prefix) and item.message in line[len(prefix) :] for line in stderr_lines
        ), f"no stderr line {prefix}...{item.message}...\nstderr:\n{run.stderr}"


@pytest.fixture(scope="module")
def subprocess_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, CliRun]:
    """`python -m tfsconf compile` on the sample, run concurrently (one process each)."""
    root = tmp_path_factory.mktemp("compile")

    def run(case: str) -> CliRun:
        workdir = root / case
        workdir.mkdir()
        spec, out = BAD / f"{case}.yaml", workdir / "out"
        proc = subprocess.run(
            [sys.executable, "-m", "tfsconf", "compile", str(spec), "--out", str(out)],
            capture_output=True,
            text=True,
            cwd=workdir,
            timeout=120,
            check=False,
        )
        return CliRun(spec, out, proc.returncode, proc.stderr)

    with ThreadPoolExecutor(max_workers=4) as pool:
        runs = pool.map(run, SUBPROCESS_CASES)
        return dict(zip(SUBPROCESS_CASES, runs, strict=True))


@pytest.mark.parametrize("case", SUBPROCESS_CASES)
def test_cli_subprocess_refuses_bad_spec(case: str, subprocess_runs: dict[str, CliRun]) -> None:
    _check_refused(case, subprocess_runs[case])


@pytest.mark.parametrize("case", CASES)
def test_cli_refuses_bad_spec(case: str, tmp_path: Path) -> None:
    spec, out = BAD / f"{case}.yaml", tmp_path / "out"

    result = CliRunner().invoke(app, ["compile", str(spec), "--out", str(out)])

    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    _check_refused(case, CliRun(spec, out, result.exit_code, result.stderr))


def test_subprocess_sample_names_real_cases() -> None:
    assert set(SUBPROCESS_CASES) <= set(CASES)
