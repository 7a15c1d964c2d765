"""`tfsconf plan` and `tfsconf show` as a user runs them: a real process each time.

Exit codes: 0 no changes, 2 changes, 1 any error (a usage error included). stdout holds
the plan and nothing else.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cliprobe import probe, tfsconf

from tfsconf import api

ROOT = Path(__file__).resolve().parents[2]
ANSI = re.compile(r"\x1b\[[0-9;]*m")

INVALID = """\
environment: broken
tfserving_version: "2.18.0"
host_groups:
  g:
    hosts: [{name: h1, address: 10.0.0.1, gpus: 1}]
servers:
  - {name: s1, group: g, gpu: 3, models: [a]}
models:
  - {name: a, base_path: /srv/tfserving/models/a, source: {kind: local, path: /d/a}}
"""


@pytest.fixture
def env(tmp_path: Path) -> Path:
    """A copy of environments/ (specs and their warmup samples) that tests may edit."""
    copy = tmp_path / "env"
    shutil.copytree(ROOT / "environments", copy)
    return copy


@pytest.fixture
def spec(env: Path) -> Path:
    return env / "production.yaml"


@pytest.fixture
def state(spec: Path, tmp_path: Path) -> Path:
    """production.yaml compiled, as `tfsconf compile --out` leaves it."""
    out = tmp_path / "state"
    api.compile_environment(spec, out)
    return out


def move_canary(spec: Path) -> None:
    """ctr: 1044 comes in, canary moves onto it (a phased hot reload), 1042 goes."""
    text = spec.read_text()
    edited = text.replace("versions: [1042, 1043]}", "versions: [1043, 1044]}").replace(
        "labels: {stable: 1042, canary: 1043}", "labels: {stable: 1043, canary: 1044}"
    )
    assert edited != text
    spec.write_text(edited)


def changed_spec(spec: Path) -> Path:
    """A second spec beside `spec` (so its samples resolve) with the canary move."""
    other = spec.with_name("production-next.yaml")
    shutil.copyfile(spec, other)
    move_canary(other)
    return other


# exit codes ---------------------------------------------------------------------------------


def test_no_changes_exits_0_and_says_so_last(spec: Path, state: Path) -> None:
    run = tfsconf("plan", str(spec), "--state", str(state))
    assert run.returncode == 0, run.stderr
    assert run.stdout.endswith("No changes.\n")
    assert run.stdout == (
        f"Environment production ({spec})\n  against compiled bundle {state}\n\nNo changes.\n"
    )
    assert run.stderr == ""


def test_changes_exit_2(spec: Path, state: Path) -> None:
    fresh = tfsconf("plan", str(spec))
    assert fresh.returncode == 2, fresh.stderr
    assert fresh.stdout.splitlines()[-1] == (
        "Plan: 6 hosts to create, 10 servers to create, 16 model versions to sync, "
        "16 warmup files to generate."
    )
    moved = tfsconf("plan", str(changed_spec(spec)), "--state", str(state), "--no-diff")
    assert moved.returncode == 2, moved.stderr
    assert "        phase 1/3: ctr: add version 1044; ctr: move label stable 1042 -> 1043; " in (
        moved.stdout
    )
    assert "        phase 2/3: ctr: move label canary 1043 -> 1044\n" in moved.stdout
    assert "        phase 3/3: ctr: drop version 1042\n" in moved.stdout
    assert moved.stdout.splitlines()[-1] == (
        "Plan: 8 servers hot-reload, 4 model versions to sync, 4 warmup files to generate."
    )
    assert "@@" not in moved.stdout  # --no-diff


def test_invalid_spec_exits_1_with_diagnostics_on_stderr_only(env: Path) -> None:
    bad = env / "broken.yaml"
    bad.write_text(INVALID)
    run = tfsconf("plan", str(bad))
    assert run.returncode == 1
    assert run.stdout == ""
    assert f"{bad}:7:31: error: servers[0].gpu: host 'h1' has 1 GPU(s)" in run.stderr
    assert run.stderr.endswith("error: 1 error(s) in the environment spec\n")
    assert "Traceback" not in run.stderr


def test_one_invalid_spec_among_several_prints_no_plan(spec: Path, env: Path) -> None:
    bad = env / "broken.yaml"
    bad.write_text(INVALID)
    run = tfsconf("plan", str(spec), str(bad))
    assert run.returncode == 1
    assert run.stdout == ""


def test_base_and_state_together_exit_1(spec: Path, state: Path) -> None:
    run = tfsconf("plan", str(spec), "--base", "HEAD", "--state", str(state))
    assert run.returncode == 1
    assert run.stdout == ""
    assert run.stderr == "error: give either --base or --state, not both\n"


def test_state_with_several_specs_exits_1(spec: Path, env: Path, state: Path) -> None:
    run = tfsconf("plan", str(spec), str(env / "staging.yaml"), "--state", str(state))
    assert run.returncode == 1
    assert run.stdout == ""
    assert "--state holds one environment" in run.stderr


def test_state_that_is_not_a_bundle_exits_1(spec: Path, tmp_path: Path) -> None:
    run = tfsconf("plan", str(spec), "--state", str(tmp_path))
    assert run.returncode == 1
    assert run.stdout == ""
    assert run.stderr == f"error: {tmp_path}: no manifest.json: not a tfsconf build\n"


@pytest.mark.parametrize(
    "args",
    [
        ["plan"],
        ["plan", "{spec}", "--format", "yaml"],
        ["plan", "{spec}", "--color", "sometimes"],
        ["plan", "{spec}", "--bogus"],
        ["plan", "{spec}", "--state"],
        ["show"],
        ["show", "{spec}", "--format", "html"],
    ],
)
def test_usage_errors_exit_1_never_2(args: list[str], spec: Path) -> None:
    run = tfsconf(*(a.format(spec=spec) for a in args))
    assert run.returncode == 1, run.stderr
    assert run.stdout == ""
    assert "Error: " in run.stderr
    assert "Traceback" not in run.stderr


def test_show_of_a_missing_foreign_or_broken_file_exits_1(tmp_path: Path) -> None:
    missing = tfsconf("show", str(tmp_path / "nope.json"))
    assert (missing.returncode, missing.stdout) == (1, "")
    assert missing.stderr == f"error: {tmp_path / 'nope.json'}: no such plan file\n"
    foreign = tmp_path / "foreign.json"
    foreign.write_text('{"plans": []}')
    run = tfsconf("show", str(foreign))
    assert (run.returncode, run.stdout) == (1, "")
    assert run.stderr == f"error: {foreign}: not a plan saved by tfsconf plan --out\n"
    future = tmp_path / "future.json"
    future.write_text('{"generator": "tfsconf", "schema_version": 9, "plans": []}')
    run = tfsconf("show", str(future))
    assert (run.returncode, run.stdout) == (1, "")
    assert run.stderr.startswith(f"error: {future}: plan schema_version 9 is not 1")
    truncated = tmp_path / "truncated.json"
    truncated.write_text('{"generator": "tfsconf", "schema_version": 1, "plans": [{}]}')
    run = tfsconf("show", str(truncated), "--no-check")
    assert (run.returncode, run.stdout) == (1, "")
    assert run.stderr.startswith(f"error: {truncated}: malformed plan (KeyError: ")
    assert "Traceback" not in run.stderr


# saved plans ------------------------------------------------------------------------------


def test_out_writes_a_plan_document(spec: Path, state: Path, tmp_path: Path) -> None:
    saved = tmp_path / "plan.json"
    nxt = changed_spec(spec)
    run = tfsconf("plan", str(nxt), "--state", str(state), "--out", str(saved))
    assert run.returncode == 2, run.stderr
    assert run.stderr == f"plan saved to {saved}\n"
    document = json.loads(saved.read_bytes())
    assert document["generator"] == "tfsconf"
    assert document["schema_version"] == 1
    (plan,) = document["plans"]
    assert plan["environment"] == "production"
    assert plan["spec"] == str(nxt)
    assert plan["state"]["kind"] == "state"
    assert plan["state"]["ref"] == str(state)
    assert len(plan["state"]["fingerprint"]) == 64
    assert plan["summary"] == run.stdout.splitlines()[-1]
    phased = [s for h in plan["hosts"] for s in h["servers"] if s["phases"]]
    assert len(phased) == 8
    # phase configs are stored once, in the plan's configs table
    for server in phased:
        assert all(p["models_config"] in plan["configs"] for p in server["phases"])
    # the JSON format on stdout is the saved document, less the directory it was made in
    assert document.pop("workdir") == str(Path.cwd())
    as_json = tfsconf("plan", str(nxt), "--state", str(state), "--format", "json")
    assert json.loads(as_json.stdout) == document


def _cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tfsconf", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )


def test_show_from_another_directory_reads_paths_where_the_plan_was_made(
    spec: Path, state: Path, tmp_path: Path
) -> None:
    saved = tmp_path / "plan.json"
    made = _cli(spec.parent, "plan", spec.name, "--state", "../state", "--out", str(saved))
    assert made.returncode == 0, made.stderr
    shown = _cli(Path("/"), "show", str(saved))
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout == made.stdout


def test_show_of_a_bundle_manifest_says_it_is_not_a_plan(state: Path) -> None:
    shown = tfsconf("show", str(state / "manifest.json"))
    assert shown.returncode == 1
    assert "not a plan saved by tfsconf plan --out" in shown.stderr


@pytest.mark.parametrize("fmt", ["text", "markdown", "json"])
def test_show_renders_a_saved_plan_as_plan_did(
    fmt: str, spec: Path, state: Path, tmp_path: Path
) -> None:
    saved = tmp_path / "plan.json"
    planned = tfsconf(
        "plan", str(changed_spec(spec)), "--state", str(state), "--format", fmt, "--out", str(saved)
    )
    assert planned.returncode == 2, planned.stderr
    shown = tfsconf("show", str(saved), "--format", fmt)
    assert shown.returncode == 2, shown.stderr
    assert shown.stdout == planned.stdout
    assert shown.stderr == ""


def test_show_of_a_plan_without_changes_exits_0(spec: Path, state: Path, tmp_path: Path) -> None:
    saved = tmp_path / "plan.json"
    planned = tfsconf("plan", str(spec), "--state", str(state), "--out", str(saved))
    assert planned.returncode == 0, planned.stderr
    shown = tfsconf("show", str(saved))
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout == planned.stdout
    assert shown.stdout.endswith("No changes.\n")


def test_show_of_a_plan_against_no_state(spec: Path, tmp_path: Path) -> None:
    saved = tmp_path / "plan.json"
    planned = tfsconf("plan", str(spec), "--out", str(saved))
    shown = tfsconf("show", str(saved))
    assert (planned.returncode, shown.returncode) == (2, 2), shown.stderr
    assert shown.stdout == planned.stdout


@pytest.fixture
def saved_plan(spec: Path, state: Path, tmp_path: Path) -> tuple[Path, str]:
    """A plan of the canary move against `state`, saved; and what plan printed."""
    saved = tmp_path / "plan.json"
    run = tfsconf("plan", str(changed_spec(spec)), "--state", str(state), "--out", str(saved))
    assert run.returncode == 2, run.stderr
    assert tfsconf("show", str(saved)).returncode == 2  # fresh
    return saved, run.stdout


def assert_stale(saved: Path, original: str, why: str) -> None:
    shown = tfsconf("show", str(saved))
    assert shown.returncode == 1
    assert shown.stdout == ""
    assert shown.stderr.startswith("error: stale plan for production: ")
    assert why in shown.stderr
    assert "hint: plan again: tfsconf plan " in shown.stderr
    forced = tfsconf("show", str(saved), "--no-check")
    assert forced.returncode == 2, forced.stderr
    assert forced.stdout == original


def test_plan_is_stale_when_a_state_file_changes(saved_plan: tuple[Path, str], state: Path) -> None:
    saved, original = saved_plan
    config = state / "hosts/rank-b1/rank-gpu1/models.config"
    config.write_bytes(config.read_bytes().replace(b"1042", b"1041"))
    assert_stale(saved, original, f"compiled bundle {state} changed since the plan was made")


def test_plan_is_stale_when_the_state_is_recompiled_from_another_spec(
    saved_plan: tuple[Path, str], state: Path, env: Path
) -> None:
    saved, original = saved_plan
    api.compile_environment(env / "production-next.yaml", state)
    assert_stale(saved, original, f"compiled bundle {state} changed since the plan was made")


def test_plan_is_stale_when_its_spec_changes(saved_plan: tuple[Path, str], env: Path) -> None:
    saved, original = saved_plan
    nxt = env / "production-next.yaml"
    nxt.write_text(nxt.read_text().replace("records: 64}", "records: 32}"))
    assert_stale(saved, original, f"{nxt} compiles to something else than when the plan was made")


def test_plan_is_stale_when_a_warmup_sample_changes(
    saved_plan: tuple[Path, str], env: Path
) -> None:
    """The samples' checksum is part of what the spec compiles to."""
    saved, original = saved_plan
    samples = env / "samples" / "cvr.jsonl"
    samples.write_bytes(samples.read_bytes() + b"\n")
    assert_stale(saved, original, "compiles to something else")


def test_plan_stays_fresh_when_nothing_it_depends_on_changes(
    saved_plan: tuple[Path, str], state: Path, env: Path
) -> None:
    """A comment in the spec, or a state file rewritten with the same bytes, is no change."""
    saved, original = saved_plan
    nxt = env / "production-next.yaml"
    nxt.write_text("# reviewed\n" + nxt.read_text())
    config = state / "hosts/rank-a1/rank-gpu0/models.config"
    config.write_bytes(config.read_bytes())
    shown = tfsconf("show", str(saved))
    assert shown.returncode == 2, shown.stderr
    assert shown.stdout == original


def test_plan_against_no_state_is_stale_when_its_spec_changes(spec: Path, tmp_path: Path) -> None:
    saved = tmp_path / "plan.json"
    planned = tfsconf("plan", str(spec), "--out", str(saved))
    assert planned.returncode == 2
    move_canary(spec)
    assert_stale(saved, planned.stdout, "compiles to something else")


# renderings ---------------------------------------------------------------------------------


def test_colour_always_never_and_auto_through_a_pipe(spec: Path, state: Path) -> None:
    nxt = str(changed_spec(spec))
    always = tfsconf("plan", nxt, "--state", str(state), "--color", "always")
    never = tfsconf("plan", nxt, "--state", str(state), "--color", "never")
    auto = tfsconf("plan", nxt, "--state", str(state))
    assert {always.returncode, never.returncode, auto.returncode} == {2}
    assert "\x1b[" in always.stdout
    assert "\x1b[33m~ rank-a1\x1b[0m" in always.stdout
    assert "\x1b[32m+" in always.stdout  # added diff lines and syncs are green
    assert "\x1b[31m-" in always.stdout  # removed diff lines are red
    assert "\x1b" not in never.stdout
    assert "\x1b" not in auto.stdout
    assert ANSI.sub("", always.stdout) == never.stdout == auto.stdout


def test_colour_applies_to_text_only(spec: Path) -> None:
    for fmt in ("markdown", "json"):
        run = tfsconf("plan", str(spec), "--format", fmt, "--color", "always")
        assert run.returncode == 2, run.stderr
        assert "\x1b" not in run.stdout


def test_show_colours_as_asked(saved_plan: tuple[Path, str]) -> None:
    saved, original = saved_plan
    coloured = tfsconf("show", str(saved), "--color", "always")
    assert coloured.returncode == 2
    assert "\x1b[" in coloured.stdout
    assert ANSI.sub("", coloured.stdout) == original


def test_markdown_has_a_summary_line_per_environment_and_details(env: Path) -> None:
    production, staging = env / "production.yaml", env / "staging.yaml"
    run = tfsconf("plan", str(production), str(staging), "--format", "markdown")
    assert run.returncode == 2, run.stderr
    lines = run.stdout.splitlines()
    assert lines[:2] == ["### tfsconf plan", ""]
    assert lines[2] == (
        "- 📝 **production**: Plan: 6 hosts to create, 10 servers to create, 16 model versions "
        "to sync, 16 warmup files to generate. _(against no current state (everything is new))_"
    )
    assert lines[3].startswith("- 📝 **staging**: Plan: 2 hosts to create, ")
    assert lines[4] == ""
    assert lines.index("#### production") < lines.index("#### staging")
    # one collapsed block per image and per host
    opened = [i for i, line in enumerate(lines) if line == "<details>"]
    closed = [i for i, line in enumerate(lines) if line == "</details>"]
    assert len(opened) == len(closed) == (1 + 6) + (2 + 2)  # images + hosts
    assert all(o < c for o, c in zip(opened, closed, strict=True))
    assert all(c < o for c, o in zip(closed, opened[1:], strict=False))
    summaries = [lines[i + 1] for i in opened]
    assert all(s.startswith("<summary>") and s.endswith("</summary>") for s in summaries)
    assert "<summary>+ <code>rank-a1</code> (ranking): 1 host to create, " in "\n".join(summaries)


def test_markdown_without_changes_has_no_details(spec: Path, state: Path) -> None:
    run = tfsconf("plan", str(spec), "--state", str(state), "--format", "markdown")
    assert run.returncode == 0, run.stderr
    where = str(state).replace("_", "\\_")  # markdown-escaped
    assert run.stdout == (
        "### tfsconf plan\n\n"
        f"- ✅ **production**: No changes. _(against compiled bundle {where})_\n"
    )


def _keys_sorted(pairs: list[tuple[str, object]]) -> dict[str, object]:
    keys = [k for k, _ in pairs]
    assert keys == sorted(keys), keys
    return dict(pairs)


@pytest.mark.parametrize("with_state", [False, True])
def test_json_is_canonical(with_state: bool, spec: Path, state: Path) -> None:
    args = ["plan", str(changed_spec(spec)), "--format", "json"]
    if with_state:
        args += ["--state", str(state)]
    first, second = tfsconf(*args), tfsconf(*args)
    assert first.returncode == second.returncode == 2
    assert first.stdout.encode() == second.stdout.encode()
    document = json.loads(first.stdout, object_pairs_hook=_keys_sorted)
    assert json.dumps(document, indent=2, sort_keys=True) + "\n" == first.stdout
    assert document["generator"] == "tfsconf"


# what plan loads --------------------------------------------------------------------------

NO_TENSORFLOW = {"tensorflow": False, "runtime": [], "native": False}


def test_plan_does_not_initialise_tensorflow(spec: Path, state: Path, tmp_path: Path) -> None:
    for args, code in (
        (["plan", str(spec), "--format", "json"], 2),
        (["plan", str(spec)], 2),
        (["plan", str(spec), "--state", str(state)], 0),
        (["plan", str(changed_spec(spec)), "--state", str(state), "--format", "markdown"], 2),
    ):
        assert probe(*args) == {"code": code, **NO_TENSORFLOW}, args
    saved = tmp_path / "plan.json"
    assert tfsconf("plan", str(spec), "--out", str(saved)).returncode == 2
    assert probe("show", str(saved), "--format", "json") == {"code": 2, **NO_TENSORFLOW}


def test_a_saved_plan_edited_by_hand_is_refused(saved_plan: tuple[Path, str]) -> None:
    saved, _ = saved_plan
    document = json.loads(saved.read_text())
    for host in document["plans"][0]["hosts"]:
        for server in host["servers"]:
            server["phases"] = []  # the label move would now go in one unsafe push
    saved.write_text(json.dumps(document))
    shown = tfsconf("show", str(saved))
    assert shown.returncode == 1
    assert shown.stdout == ""
    assert "is not what its spec and state give" in shown.stderr


@pytest.mark.parametrize(
    "edit",
    [
        lambda d: d.update(plans={}),
        lambda d: d["plans"][0]["hosts"][0]["actions"][0].update(kind="explode"),
        lambda d: d["plans"][0]["hosts"][0]["servers"][0].update(activation="reboot"),
        lambda d: d["plans"][0].update(diffs={}),
        lambda d: d["plans"][0].pop("configs"),
    ],
)
def test_a_malformed_saved_plan_is_a_clean_error(
    edit: Callable[[dict[str, Any]], None], saved_plan: tuple[Path, str]
) -> None:
    saved, _ = saved_plan
    document = json.loads(saved.read_text())
    edit(document)
    saved.write_text(json.dumps(document))
    shown = tfsconf("show", str(saved), "--no-check")
    assert shown.returncode == 1
    assert "malformed plan" in shown.stderr
    assert "Traceback" not in shown.stderr
