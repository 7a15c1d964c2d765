"""The host module's own rules, run in-process on a scratch root: release cleanup never
removes a release in use, and the lock's takeover rules."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

PLAYBOOKS = Path(__file__).resolve().parents[2] / "playbooks"
LIBRARY = PLAYBOOKS / "library" / "tfsconf_host.py"
CONFIG_ROOT = "/srv/config"


def host_module() -> Any:
    """The module as Ansible runs it, its module_utils (playbooks/module_utils, found by
    Ansible next to the playbooks) importable as ansible.module_utils.<name>."""
    import ansible.module_utils

    if str(PLAYBOOKS / "module_utils") not in ansible.module_utils.__path__:
        ansible.module_utils.__path__.append(str(PLAYBOOKS / "module_utils"))
    spec = importlib.util.spec_from_file_location("tfsconf_host_under_test", LIBRARY)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Exited(Exception):
    def __init__(self, failed: bool, result: dict[str, Any]) -> None:
        super().__init__(result)
        self.failed = failed
        self.result = result


class FakeModule:
    """The AnsibleModule surface the actions use (exit_json/fail_json end the action)."""

    check_mode = False

    def exit_json(self, **result: Any) -> None:
        raise Exited(False, result)

    def fail_json(self, **result: Any) -> None:
        raise Exited(True, result)


def run(action: str, root: Path, **params: Any) -> Exited:
    module = host_module()
    defaults = {
        "root": str(root),
        "config_root": CONFIG_ROOT,
        "run_id": "me",
        "owner": {"operator": "me@here"},
        "break_mode": "none",
        "dead_runs": [],
        "live_runs": [],
        "lease_seconds": 90,
        "release": None,
        "kind": "apply",
        "keep_releases": 1,
        "other_servers": [],
    }
    with pytest.raises(Exited) as info:
        module.ACTIONS[action](FakeModule(), {**defaults, **params})
    return info.value


PREFLIGHT = {
    "versions_present": [],
    "gpus": [],
    "runtime": "native",
    "process_path": "",
    "process_env": {},
    "tfserving_version": "",
    "preload": [],
}
"""The preflight probes' parameters that the free-space tests leave empty."""


def record_doc(release: str, servers: list[str]) -> dict[str, Any]:
    """A last-applied record as the controller sends it to `record`."""
    return {
        "release": release,
        "applied_at": "t",
        "operator": "me",
        "spec_sha256": "s",
        "manifest": {"servers": servers},
    }


def releases(root: Path) -> list[str]:
    return sorted(p.name for p in (root / "srv/config/rank/releases").iterdir())


def test_cleanup_keeps_current_and_a_lock_holders_release(tmp_path: Path) -> None:
    server = tmp_path / "srv/config/rank"
    for name in ("r-old", "r-current", "r-other-run", "r-prev", "r-new"):
        (server / "releases" / name).mkdir(parents=True)
    (server / "current").symlink_to("releases/r-current")
    state = tmp_path / "srv/config/.tfsconf"
    (state / "releases").mkdir(parents=True)
    history = [{"release": r} for r in ("r-old", "r-current", "r-prev")]
    (state / "state.json").write_text(json.dumps({"release": "r-prev", "history": history}))
    # this run broke the lock of a run that was applying r-other-run
    (state / "lock").write_text(
        json.dumps({"run_id": "me", "broke": {"run_id": "x", "release": "r-other-run"}})
    )
    doc = record_doc("r-new", ["rank"])
    out = run("record", tmp_path, record=doc)
    assert not out.failed
    assert out.result["pruned"] == ["rank/r-old"]
    assert releases(tmp_path) == ["r-current", "r-new", "r-other-run", "r-prev"]

    # another run took the lock over: it may point `current` at any release, so this run
    # (finishing late) removes none
    (server / "releases" / "r-older").mkdir()
    (state / "lock").write_text(json.dumps({"run_id": "other", "release": "r-x"}))
    out = run("record", tmp_path, record={**doc, "release": "r-newer"})
    assert not out.failed and out.result["pruned"] == []
    assert "r-older" in releases(tmp_path)


def test_record_releases_the_lock_only_when_asked_and_only_its_own(tmp_path: Path) -> None:
    """The last group's record takes the lock with it (release_lock); never another run's
    lock, and nothing without release_lock."""
    state = tmp_path / "srv/config/.tfsconf"
    (state / "releases").mkdir(parents=True)
    doc = record_doc("r-1", [])
    mine = json.dumps({"run_id": "me"})
    lock_file(tmp_path).write_text(mine)
    kept = run("record", tmp_path, record=doc)
    assert not kept.failed and kept.result["unlocked"] is False
    assert lock_file(tmp_path).read_text() == mine
    # the same record again (unchanged: nothing written) still releases
    released = run("record", tmp_path, record=doc, release_lock=True)
    assert not released.failed and released.result == {
        "changed": False,
        "pruned": [],
        "unlocked": True,
    }
    assert not lock_file(tmp_path).exists()
    theirs = json.dumps({"run_id": "other"})
    lock_file(tmp_path).write_text(theirs)
    other = run("record", tmp_path, record={**doc, "release": "r-2"}, release_lock=True)
    assert not other.failed and other.result["unlocked"] is False
    assert lock_file(tmp_path).read_text() == theirs


def test_actions_that_check_the_lock_require_the_run_id() -> None:
    """A record called without run_id pruned nothing (its release cleanup checks the lock
    is this run's); the module now refuses such a call for every action that checks."""
    import ansible.module_utils.basic as basic

    module = host_module()
    captured: dict[str, Any] = {}

    class Capture(basic.AnsibleModule):  # type: ignore[misc]
        def __init__(self, **kwargs: Any) -> None:
            captured.update(kwargs)
            raise Exited(False, {})

    original = module.AnsibleModule
    module.AnsibleModule = Capture
    try:
        with pytest.raises(Exited):
            module.main()
    finally:
        module.AnsibleModule = original
    needing = {action for _key, action, params in captured["required_if"] if "run_id" in params}
    assert needing == {"lock", "renew", "stage", "record", "unlock"}
    assert "default" not in captured["argument_spec"]["run_id"]


def lock_file(root: Path) -> Path:
    return root / "srv/config/.tfsconf/lock"


def test_lock_takeover_rules(tmp_path: Path) -> None:
    lock_file(tmp_path).parent.mkdir(parents=True)
    other = {
        "run_id": "other",
        "owner": {"operator": "alice@ops", "controller": "ctl", "pid": 7},
        "since": "then",
        "renewed_at": time.time(),
        "lease_seconds": 90,
        "release": "r-a",
    }
    lock_file(tmp_path).write_text(json.dumps(other))
    refused = run("lock", tmp_path)
    assert (
        refused.failed and "locked by alice@ops (run other, pid 7 on ctl" in refused.result["msg"]
    )
    live = run("lock", tmp_path, break_mode="dead")
    assert live.failed and "locked by a live apply" in live.result["msg"]
    # proven alive by its controller: kept even with an old heartbeat
    lock_file(tmp_path).write_text(json.dumps({**other, "renewed_at": 0}))
    kept = run("lock", tmp_path, break_mode="dead", live_runs=["other"])
    assert kept.failed
    taken = run("lock", tmp_path, break_mode="dead")  # lease ran out
    broken = taken.result["ansible_facts"]["tfsconf_out_broken_lock"]
    assert not taken.failed and broken["run_id"] == "other"
    held = json.loads(lock_file(tmp_path).read_text())
    assert held["run_id"] == "me" and held["broke"] == {"run_id": "other", "release": "r-a"}
    # proven dead by its controller: taken at once; any lock by force
    lock_file(tmp_path).write_text(json.dumps(other))
    assert not run("lock", tmp_path, break_mode="dead", dead_runs=["other"]).failed
    lock_file(tmp_path).write_text(json.dumps(other))
    assert not run("lock", tmp_path, break_mode="force").failed
    assert not run("unlock", tmp_path).failed
    assert not lock_file(tmp_path).exists()


def test_lock_runs_the_probe_under_the_lock_and_reports_its_problems(tmp_path: Path) -> None:
    """Given `probe`, the lock is taken and the preflight's problems come back as the
    run's output (the controller decides); without it, no preflight runs at all."""
    (tmp_path / "srv/models/present").mkdir(parents=True)
    process = ("process_path", "process_env")  # the host's own values: not the probe's
    probe = {
        **{k: v for k, v in PREFLIGHT.items() if k not in process},
        "model_root": "/srv/models",
        "base_paths": ["/srv/models/present"],
        "versions_present": [{"base_path": "/srv/models/present", "version": 4}],
        "need_bytes": 0,
        "syncs": [],
    }
    out = run("lock", tmp_path, probe=probe, process_path="", process_env={})
    assert not out.failed and lock_file(tmp_path).exists()
    no_server = "runtime native: /usr/bin/tensorflow_model_server is missing"
    assert out.result["ansible_facts"]["tfsconf_out_preflight"] == [
        "version 4 of /srv/models/present is no longer on the host",
        no_server,
    ]
    (tmp_path / "srv/models/present/4").mkdir()
    out = run("lock", tmp_path, probe=probe, process_path="", process_env={})
    assert out.result["ansible_facts"]["tfsconf_out_preflight"] == [no_server]
    out = run("lock", tmp_path)
    assert "tfsconf_out_preflight" not in out.result["ansible_facts"]
    with pytest.raises(ValueError, match="probe: unknown keys gpu"):
        run("lock", tmp_path, probe={**probe, "gpu": 1})


def test_free_space_counts_only_versions_not_published_yet(tmp_path: Path) -> None:
    base = "/srv/models/mixed"
    (tmp_path / "srv/models/mixed/2").mkdir(parents=True)  # published by an earlier apply
    huge = 1 << 50  # more than any disk here
    common = {
        "model_root": "/srv/models",
        "base_paths": [base],
        **PREFLIGHT,
    }
    published = [{"model": "mixed", "base_path": base, "version": 2, "bytes": huge}]
    out = run("preflight", tmp_path, **common, need_bytes=huge, syncs=published)
    assert "free disk" not in out.result.get("msg", ""), out.result
    missing = [*published, {"model": "mixed", "base_path": base, "version": 3, "bytes": huge}]
    out = run("preflight", tmp_path, **common, need_bytes=2 * huge, syncs=missing)
    assert out.failed
    assert f"{huge >> 20} MiB needed for new model versions (mixed v3)" in out.result["msg"]


def test_free_space_is_counted_on_the_base_paths_own_filesystem(tmp_path: Path) -> None:
    """A model with a disk of its own (a 1 MiB tmpfs over its base path): a 2 MiB version
    is refused there, though model_root's filesystem has room; another model's version
    on model_root's filesystem is not held against the small disk."""
    small = tmp_path / "srv/models/small"
    small.mkdir(parents=True)
    (tmp_path / "srv/models/big").mkdir(parents=True)
    common = {
        "model_root": "/srv/models",
        "base_paths": ["/srv/models/small", "/srv/models/big"],
        **PREFLIGHT,
    }
    on_big = {"model": "big", "base_path": "/srv/models/big", "version": 1, "bytes": 4 << 20}
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tfsconf-test", str(small)], check=True
    )
    try:
        syncs = [
            on_big,
            {"model": "small", "base_path": "/srv/models/small", "version": 1, "bytes": 512 << 10},
        ]
        out = run("preflight", tmp_path, **common, need_bytes=0, syncs=syncs)
        assert "free disk" not in out.result.get("msg", ""), out.result
        syncs[1]["bytes"] = 2 << 20
        out = run("preflight", tmp_path, **common, need_bytes=0, syncs=syncs)
        assert out.failed
        assert [m for m in out.result["problems"] if "free disk" in m] == [
            "not enough free disk under /srv/models/small: 2 MiB needed for new model versions "
            "(small v1), 1 MiB free"
        ], out.result
    finally:
        subprocess.run(["umount", "-l", str(small)], check=False)


def _lock_in_child(root: str, run_id: str, start: Any, out: Any) -> None:
    start.wait()
    try:
        result = run("lock", Path(root), run_id=run_id)
        out.put((run_id, result.failed, str(result.result.get("msg", ""))))
    except BaseException as exc:  # a crash is a result too: the test reports it
        out.put((run_id, True, f"crashed: {type(exc).__name__}: {exc}"))


def test_two_processes_locking_at_once_exactly_one_wins(tmp_path: Path) -> None:
    """The lock is atomic on the host: of two processes taking it at the same moment one
    holds it and the other is refused with the holder's name, never a half-written file."""
    import multiprocessing

    context = multiprocessing.get_context("fork")
    for round_no in range(25):
        root = tmp_path / f"round{round_no}"
        lock_file(root).parent.mkdir(parents=True)
        start, out = context.Event(), context.Queue()
        children = [
            context.Process(target=_lock_in_child, args=(str(root), name, start, out))
            for name in ("a", "b")
        ]
        for child in children:
            child.start()
        start.set()
        results = sorted(out.get(timeout=30) for _ in children)
        for child in children:
            child.join(timeout=30)
        winners = [name for name, failed, _msg in results if not failed]
        assert len(winners) == 1, (round_no, results)
        loser = next(r for r in results if r[1])
        assert f"host is locked by me@here (run {winners[0]}, pid" in loser[2], (round_no, results)
        assert json.loads(lock_file(root).read_text())["run_id"] == winners[0]


def test_inspect_returns_files_in_use_record_and_lock_in_one_call(tmp_path: Path) -> None:
    """gather.yml reads all three with one module call per host (plan --live, status and
    apply all start with it)."""
    import base64

    empty = run("inspect", tmp_path)
    assert not empty.failed
    assert empty.result["servers"] == {} and empty.result["record"] == ""
    assert empty.result["lock"] == ""

    config = tmp_path / CONFIG_ROOT.lstrip("/")
    release = config / "rank" / "releases" / "r-1"
    release.mkdir(parents=True)
    (release / "models.config").write_text("model_config_list {}\n")
    (config / "rank" / "current").symlink_to("releases/r-1")
    (config / ".tfsconf").mkdir()
    (config / ".tfsconf" / "state.json").write_text('{"release": "r-1"}')
    taken = run("lock", tmp_path)
    assert not taken.failed
    found = run("inspect", tmp_path).result
    assert found["servers"]["rank"]["current"] == "r-1"
    assert set(found["servers"]["rank"]["files"]) == {"models.config"}
    assert json.loads(base64.b64decode(found["record"])) == {"release": "r-1"}
    assert json.loads(base64.b64decode(found["lock"]))["run_id"] == "me"


def test_stage_installs_the_supervisor_once(tmp_path: Path) -> None:
    """The process runtime's supervisor comes with the stage call (no copy task of its
    own); an identical one is left alone, another text replaces it whole."""
    text = "#!/usr/bin/python3\nprint('supervisor')\n"
    path = tmp_path / CONFIG_ROOT.lstrip("/") / ".tfsconf" / "bin" / "tfsconf_supervise.py"
    params = {"release": "r-1", "servers": {}, "base_paths": [], "supervisor": text}
    first = run("stage", tmp_path, **params)
    assert not first.failed and first.result["changed"] is True
    assert path.read_text() == text and path.stat().st_mode & 0o777 == 0o755
    again = run("stage", tmp_path, **params)
    assert again.result["changed"] is False
    run("stage", tmp_path, **{**params, "supervisor": text + "# v2\n"})
    assert path.read_text().endswith("# v2\n")
    none = tmp_path / "other"
    run("stage", none, **{**params, "supervisor": ""})  # docker/systemd runtimes: none
    assert not (none / CONFIG_ROOT.lstrip("/") / ".tfsconf" / "bin" / path.name).exists()


def test_lock_stages_the_release_only_when_the_probe_passes(tmp_path: Path) -> None:
    """Given `staging` with the probe, a host whose probe passes has its release staged in
    the lock's call (as stage would: inert, no `current` link moves), and says so; one
    whose probe fails is left as it was. A failure to stage is a problem, not a failure:
    the lock is held either way."""
    (tmp_path / "srv/models/present/4").mkdir(parents=True)
    probe = {
        **{k: v for k, v in PREFLIGHT.items() if k not in ("process_path", "process_env")},
        "runtime": "process",
        "model_root": "/srv/models",
        "base_paths": ["/srv/models/present", "/srv/models/new"],
        "versions_present": [{"base_path": "/srv/models/present", "version": 4}],
        "need_bytes": 0,
        "syncs": [],
    }
    server = tmp_path / "srv/config/rank"
    staging = {
        "release": "r-1",
        "servers": {"rank": {"models.config": "model_config_list {}\n"}},
        "base_paths": probe["base_paths"],
    }
    host = {"process_path": str(tmp_path / "bin"), "process_env": {}, "supervisor": "#!s\n"}
    (tmp_path / "bin").mkdir()
    binary = tmp_path / "bin/tensorflow_model_server"
    binary.write_text("#!/bin/sh\necho 'TensorFlow ModelServer: 2.14.1-rc0+dev.sha.x'\n")
    binary.chmod(0o755)

    out = run("lock", tmp_path, probe={**probe, "versions_present": []}, staging=staging, **host)
    facts = out.result["ansible_facts"]
    assert not out.failed and facts["tfsconf_out_preflight"] == []
    assert facts["tfsconf_out_staged"] == {"release": "r-1", "changed": True}
    assert (server / "releases/r-1/models.config").read_text() == "model_config_list {}\n"
    assert not (server / "current").exists()  # staged, not switched
    assert (tmp_path / "srv/models/new").is_dir()
    assert json.loads(lock_file(tmp_path).read_text())["release"] == "r-1"
    again = run("lock", tmp_path, probe={**probe, "versions_present": []}, staging=staging, **host)
    assert again.result["ansible_facts"]["tfsconf_out_staged"]["changed"] is False

    # a probe problem: nothing staged
    failing = {**probe, "versions_present": [{"base_path": "/srv/models/present", "version": 9}]}
    out = run("lock", tmp_path, probe=failing, staging={**staging, "release": "r-2"}, **host)
    facts = out.result["ansible_facts"]
    assert facts["tfsconf_out_preflight"] and "tfsconf_out_staged" not in facts
    assert not (server / "releases/r-2").exists()

    # a release that cannot be written (a file where the server's directory goes): the
    # lock holds, the problem says what and where
    (tmp_path / "srv/config/blocked").write_text("")
    out = run(
        "lock",
        tmp_path,
        probe={**probe, "versions_present": []},
        staging={**staging, "release": "r-3", "servers": {"blocked": {"a": "b"}}},
        **host,
    )
    facts = out.result["ansible_facts"]
    assert not out.failed and "tfsconf_out_staged" not in facts
    (problem,) = facts["tfsconf_out_preflight"]
    assert problem.startswith("cannot stage release r-3: ") and "srv/config/blocked" in problem
    out = run("lock", tmp_path, probe=probe, staging={**staging, "relase": "x"}, **host)
    assert out.failed and out.result["msg"] == "staging: unknown keys relase"


def test_unlock_takes_away_what_the_run_staged_and_did_not_apply(tmp_path: Path) -> None:
    """The lock's call stages the release before the rollout reaches the host: a run that
    ends without applying it (refused elsewhere, a failed probe, stopped, rolled back)
    leaves the host as it found it. Unlock removes the releases this run created that
    nothing uses and the base paths it created that are still empty; a release that
    existed before, or one the host's record names, stays."""
    config = tmp_path / "srv/config"
    (config / "rank/releases/r-old").mkdir(parents=True)
    (config / "rank/current").symlink_to("releases/r-old")
    staging = {
        "release": "r-new",
        "servers": {"rank": {"models.config": "x\n"}, "added": {"models.config": "y\n"}},
        "base_paths": ["/srv/models/new", "/srv/models/synced"],
    }
    params = {**staging, "supervisor": ""}

    def stage_and_unlock() -> list[str]:
        assert not run("lock", tmp_path).failed
        assert not run("stage", tmp_path, **params).failed
        assert (config / "rank/releases/r-new").is_dir()
        assert (config / "added/releases/r-new").is_dir()
        out = run("unlock", tmp_path)
        assert not out.failed and not lock_file(tmp_path).exists()
        return sorted(out.result["discarded"])

    (tmp_path / "srv/models/synced").mkdir(parents=True)
    (tmp_path / "srv/models/synced/3").mkdir()  # existed: not created by this run
    assert stage_and_unlock() == [
        "/srv/models/new",
        "added/releases/r-new",
        "rank/releases/r-new",
    ]
    assert not (config / "rank/releases/r-new").exists()
    assert (config / "rank/releases/r-old").is_dir() and (config / "rank/current").is_symlink()
    assert not (tmp_path / "srv/models/new").exists()
    assert (tmp_path / "srv/models/synced/3").is_dir()

    # a created base path a version was synced into is not empty: it stays
    (tmp_path / "srv/models/synced/3").rmdir()
    (tmp_path / "srv/models/synced").rmdir()
    assert not run("lock", tmp_path).failed
    assert not run("stage", tmp_path, **params).failed
    (tmp_path / "srv/models/synced/5").mkdir()
    out = run("unlock", tmp_path)
    assert "/srv/models/synced" not in out.result["discarded"]
    assert "/srv/models/new" in out.result["discarded"]
    assert (tmp_path / "srv/models/synced/5").is_dir()

    # a release that was on the host before this run stages it again stays
    (config / "rank/releases/r-new").mkdir()
    (config / "rank/releases/r-new/models.config").write_text("x\n")
    assert stage_and_unlock() == ["/srv/models/new", "added/releases/r-new"]
    assert (config / "rank/releases/r-new").is_dir()

    # switched but not recorded (a rollback that could not switch back): what `current`
    # points at is never removed
    assert not (config / "added/releases/r-new").exists()
    assert not run("lock", tmp_path).failed
    assert not run("stage", tmp_path, **params).failed
    (config / "added/current").symlink_to("releases/r-new")
    out = run("unlock", tmp_path)
    assert "added/releases/r-new" not in out.result["discarded"]
    assert (config / "added/current/models.config").read_text() == "y\n"

    # applied: the record names the release, and the record's own release of the lock
    # leaves it and the base paths it created
    assert not run("lock", tmp_path).failed
    assert not run("stage", tmp_path, **params).failed
    doc = record_doc("r-new", [])
    (config / ".tfsconf/releases").mkdir(parents=True, exist_ok=True)
    out = run("record", tmp_path, record=doc, release_lock=True, keep_releases=5)
    assert not out.failed and out.result["unlocked"] is True
    assert (config / "added/releases/r-new").is_dir()
    assert (tmp_path / "srv/models/new").is_dir()
