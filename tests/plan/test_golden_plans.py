"""`tfsconf plan --base` end to end: a real git repository, a real edit, the real CLI.

Each scenario commits the bundled examples (environments/) into a fresh repository with a
fixed identity and fixed dates (so the commit id in the plan is the same on every run),
edits the spec in the working tree and plans it against HEAD in all three formats. The
output is compared byte for byte with tests/plan/testdata/golden/<scenario>/plan.{txt,md,json}
and the JSON is also checked for what the scenario is about.

Refresh deliberately with: scripts/test tests/plan/test_golden_plans.py --update-golden
"""

from __future__ import annotations

import difflib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

ROOT = Path(__file__).resolve().parent.parent.parent
GOLDEN = Path(__file__).parent / "testdata" / "golden"
SPEC = "environments/production.yaml"
FORMATS = {"text": "txt", "markdown": "md", "json": "json"}
RANKING_HOSTS = ("rank-a1", "rank-a2", "rank-b1", "rank-b2")
RANKING_SERVERS = tuple(f"{h}/{s}" for h in RANKING_HOSTS for s in ("rank-gpu0", "rank-gpu1"))

# Git must not read the user's configuration (signing, hooks, templates) nor a repository
# it may be running inside of; dates and identity are fixed so commit ids are reproducible.
_GIT_ENV = {
    "GIT_AUTHOR_NAME": "tfsconf tests",
    "GIT_AUTHOR_EMAIL": "tests@tfsconf.invalid",
    "GIT_COMMITTER_NAME": "tfsconf tests",
    "GIT_COMMITTER_EMAIL": "tests@tfsconf.invalid",
    "GIT_AUTHOR_DATE": "2024-01-02T03:04:05+00:00",
    "GIT_COMMITTER_DATE": "2024-01-02T03:04:05+00:00",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
    "NO_COLOR": "1",
}
_GIT_REPO_VARS = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY")


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _GIT_REPO_VARS}
    env.update(_GIT_ENV)
    return env


def _git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "commit.gpgsign=false", *args],
        cwd=repo,
        env=_env(),
        check=True,
        capture_output=True,
    )


def _base_repo(repo: Path, *, without: tuple[str, ...] = ()) -> None:
    """A repository whose one commit (main) holds environments/, minus `without`."""
    repo.mkdir(parents=True)
    _git(repo, "-c", "init.defaultBranch=main", "init", "-q", ".")
    shutil.copytree(ROOT / "environments", repo / "environments")
    for rel in without:
        (repo / rel).unlink()
    _git(repo, "add", "environments")
    _git(repo, "commit", "-q", "-m", "base")


def _tfsconf(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tfsconf", *args],
        cwd=repo,
        env=_env(),
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def _plan(repo: Path, fmt: str, ref: str = "HEAD") -> subprocess.CompletedProcess[str]:
    return _tfsconf(repo, "plan", SPEC, "--base", ref, "--format", fmt, "--color", "never")


# scenarios -------------------------------------------------------------------------------

Edit = tuple[str, str]


@dataclass(frozen=True, slots=True)
class Scenario:
    edits: tuple[Edit, ...]
    """(old, new) text replacements in the spec; each old text occurs exactly once."""
    exit_code: int = 2


_RANK_GPU1_MODELS = "    rest_port: 8511\n    per_process_gpu_memory_fraction: 0.9\n    models: "

SCENARIOS: dict[str, Scenario] = {
    # cvr gains version 319 beside 318; its stable label stays on 318
    "version_bump": Scenario(
        (
            (
                "versions: {policy: specific, versions: [318]}",
                "versions: {policy: specific, versions: [318, 319]}",
            ),
        )
    ),
    # cvr 318 -> 319 and the stable label follows to the new version: phased reload
    "label_move": Scenario(
        (
            (
                "versions: {policy: specific, versions: [318]}\n    labels: {stable: 318}",
                "versions: {policy: specific, versions: [319]}\n    labels: {stable: 319}",
            ),
        )
    ),
    # the ranking group's batching (batching_parameters.txt, read only at start)
    "batching_change": Scenario(
        (("batch_timeout_micros: 2000", "batch_timeout_micros: 1000"),),
    ),
    # the allocator's malloc_conf is baked into the image
    "image_change": Scenario(
        (
            (
                '"background_thread:true,dirty_decay_ms:5000,muzzy_decay_ms:5000"',
                '"background_thread:true,dirty_decay_ms:10000,muzzy_decay_ms:10000"',
            ),
        )
    ),
    # a fifth ranking host
    "new_host": Scenario(
        (
            (
                "      - {name: rank-b2, address: 10.20.2.12, gpus: 2}\n",
                "      - {name: rank-b2, address: 10.20.2.12, gpus: 2}\n"
                "      - {name: rank-c1, address: 10.20.4.11, gpus: 2}\n",
            ),
        )
    ),
    # cvr leaves rank-gpu1 but stays on rank-gpu0
    "removed_model": Scenario(
        ((_RANK_GPU1_MODELS + "[ctr, cvr]", _RANK_GPU1_MODELS + "[ctr]"),),
    ),
    # cvr leaves the spec: no server serves it any more
    "removed_model_everywhere": Scenario(
        (
            (_RANK_GPU1_MODELS + "[ctr, cvr]", _RANK_GPU1_MODELS + "[ctr]"),
            (
                "    per_process_gpu_memory_fraction: 0.9\n    models: [ctr, cvr]",
                "    per_process_gpu_memory_fraction: 0.9\n    models: [ctr]",
            ),
            (
                "  - name: cvr\n"
                "    base_path: /srv/tfserving/models/cvr\n"
                '    source: {kind: webhdfs, url: "webhdfs://namenode.ml.internal:9870/models/'
                'ranking/cvr"}\n'
                "    versions: {policy: specific, versions: [318]}\n"
                "    labels: {stable: 318}\n"
                "    warmup: {samples: samples/cvr.jsonl, records: 64}\n",
                "",
            ),
        )
    ),
    # comments only: the compiled bundle is the same
    "no_change": Scenario(
        (
            ("runtime: docker\n", "# every server runs in a container\nruntime: docker\n"),
            ("step: 1                 # one host", "step: 1  # a single host"),
        ),
        exit_code=0,
    ),
}


def _apply_edits(spec: Path, edits: tuple[Edit, ...]) -> None:
    text = spec.read_text()
    for old, new in edits:
        assert old != new
        assert text.count(old) == 1, f"edit target occurs {text.count(old)} times: {old!r}"
        text = text.replace(old, new)
    assert text != spec.read_text(), "the edits left the spec as it was"
    spec.write_text(text)


@dataclass(repr=False)
class _Runs:
    """One repository per scenario and one CLI run per (scenario, format), made on demand
    and shared by the golden and the semantic tests."""

    root: Path
    repos: dict[str, Path] = field(default_factory=dict)
    outputs: dict[tuple[str, str], subprocess.CompletedProcess[str]] = field(default_factory=dict)

    def repo(self, scenario: str) -> Path:
        found = self.repos.get(scenario)
        if found is None:
            found = self.root / scenario
            _base_repo(found)
            _apply_edits(found / SPEC, SCENARIOS[scenario].edits)
            self.repos[scenario] = found
        return found

    def run(self, scenario: str, fmt: str) -> subprocess.CompletedProcess[str]:
        key = (scenario, fmt)
        found = self.outputs.get(key)
        if found is None:
            found = self.outputs[key] = _plan(self.repo(scenario), fmt)
        return found

    def plan(self, scenario: str) -> dict[str, Any]:
        """The scenario's one plan, from the JSON output (checked like the golden test)."""
        run = self.run(scenario, "json")
        _check_run(run, SCENARIOS[scenario].exit_code)
        document = json.loads(run.stdout)
        assert document["generator"] == "tfsconf"
        (plan,) = document["plans"]
        assert isinstance(plan, dict)
        return plan


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> _Runs:
    return _Runs(tmp_path_factory.mktemp("plans"))


def _check_run(run: subprocess.CompletedProcess[str], exit_code: int) -> None:
    assert "Traceback" not in run.stderr, run.stderr
    assert run.returncode == exit_code, f"exit {run.returncode}, stderr:\n{run.stderr}"


# golden files ----------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_plan_matches_golden(scenario: str, fmt: str, runs: _Runs, update_golden: bool) -> None:
    run = runs.run(scenario, fmt)
    _check_run(run, SCENARIOS[scenario].exit_code)
    golden = GOLDEN / scenario / f"plan.{FORMATS[fmt]}"
    if update_golden:
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_bytes(run.stdout.encode())
    if not golden.is_file():
        pytest.fail(
            f"no golden file {golden.relative_to(ROOT)}: create it with "
            "scripts/test tests/plan/test_golden_plans.py --update-golden",
            pytrace=False,
        )
    expected = golden.read_bytes().decode()
    if run.stdout != expected:
        diff = difflib.unified_diff(
            expected.splitlines(),
            run.stdout.splitlines(),
            f"golden/{scenario}/{golden.name}",
            f"plan/{scenario}/{golden.name}",
            lineterm="",
        )
        pytest.fail(
            "the plan differs from the golden file:\n"
            + "\n".join(diff)
            + "\nIf the change is intended, refresh with: "
            "scripts/test tests/plan/test_golden_plans.py --update-golden",
            pytrace=False,
        )


# what each scenario is about, from the JSON ----------------------------------------------


def _servers(plan: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["address"]: s for h in plan["hosts"] for s in h["servers"]}


def _hosts(plan: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {h["name"]: h for h in plan["hosts"]}


def _risk_kinds(plan: dict[str, Any]) -> set[str]:
    return {r["kind"] for r in plan["risks"]}


def _check_version_bump(plan: dict[str, Any], repo: Path) -> None:
    servers = _servers(plan)
    assert sorted(servers) == sorted(RANKING_SERVERS)
    assert {s["activation"] for s in servers.values()} == {"hot-reload"}
    assert all(s["phases"] == [] for s in servers.values()), "no label moves: one push"
    for host in RANKING_HOSTS:
        syncs = [
            (a["model"], a["version"]) for a in _hosts(plan)[host]["actions"] if a["kind"] == "sync"
        ]
        assert syncs == [("cvr", 319)], host
    assert plan["images"] == []


def _check_label_move(plan: dict[str, Any], repo: Path) -> None:
    compiled = repo / "compiled"
    run = _tfsconf(repo, "compile", SPEC, "--out", str(compiled))
    _check_run(run, 0)
    servers = _servers(plan)
    assert sorted(servers) == sorted(RANKING_SERVERS)
    for address, server in servers.items():
        assert server["activation"] == "hot-reload"
        phases = server["phases"]
        assert len(phases) > 1, address
        assert [p["number"] for p in phases] == list(range(1, len(phases) + 1))
        # phase 1 adds 319 with the label still on 318, and waits for 319
        first = model_server_config_pb2.ModelServerConfig()
        text_format.Parse(plan["configs"][phases[0]["models_config"]], first)
        (cvr,) = [c for c in first.model_config_list.config if c.name == "cvr"]
        assert sorted(cvr.model_version_policy.specific.versions) == [318, 319]
        assert dict(cvr.version_labels) == {"stable": 318}
        assert phases[0]["wait_for"] == [{"model": "cvr", "version": 319}]
        # the last phase is exactly what compile writes
        expected = (compiled / "hosts" / address / "models.config").read_bytes()
        assert plan["configs"][phases[-1]["models_config"]].encode() == expected, address
    assert "version-unloaded" in _risk_kinds(plan)


def _check_batching_change(plan: dict[str, Any], repo: Path) -> None:
    servers = _servers(plan)
    assert sorted(servers) == sorted(RANKING_SERVERS)
    for address, server in servers.items():
        assert server["activation"] == "restart", address
        assert any("batch_timeout_micros 2000 -> 1000" in r for r in server["reasons"]), address
    assert all(h["actions"] == [] for h in plan["hosts"]), "nothing to sync"


def _check_image_change(plan: dict[str, Any], repo: Path) -> None:
    (image,) = plan["images"]
    assert image["change"] == "update"
    assert image["old_ref"] != image["new_ref"]
    assert image["file"]["path"].endswith("/Dockerfile")
    servers = _servers(plan)
    assert servers, "the image's servers are rebuilt"
    for address, server in servers.items():
        assert server["activation"] == "rebuild", address
        assert any(image["new_ref"] in r for r in server["reasons"]), address


def _check_new_host(plan: dict[str, Any], repo: Path) -> None:
    hosts = _hosts(plan)
    assert sorted(hosts) == ["rank-c1"], "the existing hosts are unchanged"
    host = hosts["rank-c1"]
    assert host["change"] == "create"
    assert host["group"] == "ranking"
    assert [(s["name"], s["activation"]) for s in host["servers"]] == [
        ("rank-gpu0", "create"),
        ("rank-gpu1", "create"),
    ]
    syncs = sorted((a["model"], a["version"]) for a in host["actions"] if a["kind"] == "sync")
    assert syncs == [("ctr", 1042), ("ctr", 1043), ("cvr", 318)]
    assert plan["counts"]["hosts_create"] == 1


def _check_removed_model(plan: dict[str, Any], repo: Path) -> None:
    servers = _servers(plan)
    assert sorted(servers) == sorted(a for a in RANKING_SERVERS if a.endswith("rank-gpu1"))
    assert {s["activation"] for s in servers.values()} == {"hot-reload"}
    (risk,) = [r for r in plan["risks"] if r["kind"] in ("model-removed", "model-unloaded")]
    assert risk["kind"] == "model-removed"
    assert "cvr" in risk["message"]
    assert risk["addresses"] == sorted(servers)


def _check_removed_model_everywhere(plan: dict[str, Any], repo: Path) -> None:
    servers = _servers(plan)
    assert sorted(servers) == sorted(RANKING_SERVERS)
    risks = [r for r in plan["risks"] if r["kind"] in ("model-removed", "model-unloaded")]
    assert [r["kind"] for r in risks] == ["model-unloaded"]
    assert risks[0]["addresses"] == sorted(RANKING_SERVERS)


def _check_no_change(plan: dict[str, Any], repo: Path) -> None:
    assert plan["hosts"] == []
    assert plan["images"] == []
    assert plan["risks"] == []
    assert plan["summary"] == "No changes."


CHECKS: dict[str, Callable[[dict[str, Any], Path], None]] = {
    "version_bump": _check_version_bump,
    "label_move": _check_label_move,
    "batching_change": _check_batching_change,
    "image_change": _check_image_change,
    "new_host": _check_new_host,
    "removed_model": _check_removed_model,
    "removed_model_everywhere": _check_removed_model_everywhere,
    "no_change": _check_no_change,
}


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_plan_json_says_what_the_change_does(scenario: str, runs: _Runs) -> None:
    plan = runs.plan(scenario)
    assert plan["state"]["kind"] == "base"
    assert plan["state"]["ref"] == "HEAD"
    assert plan["spec"] == SPEC
    CHECKS[scenario](plan, runs.repo(scenario))


def test_no_change_text_says_so(runs: _Runs) -> None:
    run = runs.run("no_change", "text")
    assert run.stdout.splitlines()[-1] == "No changes."


def test_every_scenario_has_a_check() -> None:
    assert set(CHECKS) == set(SCENARIOS)


# the base itself ---------------------------------------------------------------------------


def test_unknown_base_ref_is_a_one_line_error(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    _base_repo(repo)
    run = _plan(repo, "text", ref="no-such-branch")
    assert run.returncode == 1
    assert run.stdout == ""
    assert "Traceback" not in run.stderr
    lines = run.stderr.splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith("error: --base no-such-branch: "), lines[0]


def test_spec_missing_at_the_base_plans_everything_as_new(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    _base_repo(repo, without=(SPEC,))
    shutil.copy2(ROOT / SPEC, repo / SPEC)  # added after the base commit
    run = _plan(repo, "json")
    _check_run(run, 2)
    (plan,) = json.loads(run.stdout)["plans"]
    assert plan["state"]["kind"] == "base"
    assert f"{SPEC} does not exist there" in plan["state"]["detail"]
    assert [h["name"] for h in plan["hosts"]] == [*RANKING_HOSTS, "vision-1", "vision-2"]
    assert {h["change"] for h in plan["hosts"]} == {"create"}
    servers = _servers(plan)
    assert len(servers) == 10
    assert {s["change"] for s in servers.values()} == {"create"}
    assert {s["activation"] for s in servers.values()} == {"create"}
    assert plan["images"], "the image is new too"
    assert {i["change"] for i in plan["images"]} == {"create"}
    assert plan["counts"]["hosts_create"] == 6
    assert plan["counts"]["create"] == 10
