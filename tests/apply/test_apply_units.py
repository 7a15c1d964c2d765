"""The apply pieces that need no test host: inventory, host variables, records and the
live state built from them, rollback targets, the report, the ansible-runner adapter."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tfsconf.apply import ansible
from tfsconf.apply.inventory import build_inventory, load_host_vars
from tfsconf.apply.record import (
    HostRecord,
    bundle_from_records,
    parse_record,
    release_id,
)
from tfsconf.apply.report import ApplyReport, HostReport, render_report
from tfsconf.apply.rollback import choose_targets
from tfsconf.errors import UserError

REPO = Path(__file__).resolve().parents[2]
STAGING = REPO / "environments" / "staging.yaml"


@pytest.fixture(scope="module")
def staging():  # type: ignore[no-untyped-def]
    from tfsconf.compile import build_bundle
    from tfsconf.validate.load import load_environment

    env = load_environment(STAGING).resolved
    return env, build_bundle(env)


def test_inventory_keeps_host_key_checking_on(staging) -> None:  # type: ignore[no-untyped-def]
    env, _bundle = staging
    inventory = build_inventory(env)
    hosts = inventory["all"]["hosts"]
    stg1 = hosts["stg-1"]
    assert stg1["ansible_host"] == "10.30.0.11"
    assert stg1["ansible_user"] == "deploy"
    assert "-o StrictHostKeyChecking=yes" in stg1["ansible_ssh_common_args"]
    assert "UserKnownHostsFile=/etc/tfsconf/ssh/known_hosts" in stg1["ansible_ssh_common_args"]
    assert stg1["ansible_host_key_checking"] is True
    assert hosts["localhost"]["ansible_python_interpreter"] == sys.executable
    assert set(inventory["all"]["children"]["tfsconf_hosts"]["hosts"]) == {"stg-1", "stg-2"}


def test_host_vars_merge_and_are_checked(staging, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    env, _bundle = staging
    good = tmp_path / "vars.yaml"
    good.write_text("all: {ansible_python_interpreter: /opt/py}\nstg-2: {tfsconf_root: /r}\n")
    inventory = build_inventory(env, load_host_vars(good, env))
    assert inventory["all"]["hosts"]["stg-1"]["ansible_python_interpreter"] == "/opt/py"
    assert inventory["all"]["hosts"]["stg-2"]["tfsconf_root"] == "/r"
    for text, message in [
        ("nohost: {a: 1}\n", "'nohost' is not a host"),
        ("stg-1: [1]\n", "expected a mapping of variable"),
        ("stg-1: {'bad name': 1}\n", "not a variable name"),
        ("stg-1: {tfsconf_work: 1}\n", "not a variable name"),
        ("- 1\n", "expected a mapping of host name"),
        ("stg-1: !!python/object:os.system {}\n", "not valid YAML"),
    ]:
        bad = tmp_path / "bad.yaml"
        bad.write_text(text)
        with pytest.raises(UserError, match=message):
            load_host_vars(bad, env)


def _record_of(env, bundle, host: str) -> HostRecord:  # type: ignore[no-untyped-def]
    from tfsconf.compile.bundle import MANIFEST

    manifest = json.loads(bundle.files[MANIFEST])
    prefix = f"hosts/{host}/"
    files = {p[len(prefix) :]: d.decode() for p, d in bundle.files.items() if p.startswith(prefix)}
    entry = manifest["hosts"][host]
    images = {i: manifest["images"][i] for i in entry["server_images"].values()}
    data = {
        "schema_version": 1,
        "generator": "tfsconf",
        "release": release_id({k: v.encode() for k, v in files.items()}, images),
        "manifest": entry,
        "images": images,
        "image_files": {i: bundle.files[f"images/{i}/Dockerfile"].decode() for i in images},
        "files": files,
    }
    raw = base64.b64encode(json.dumps(data).encode()).decode()
    record = parse_record(host, raw)
    assert record is not None
    return record


def test_live_state_of_applied_hosts_is_the_compiled_state(staging) -> None:  # type: ignore[no-untyped-def]
    """What apply records and gather reads back plans as "No changes." against the spec."""
    from tfsconf.plan.planner import make_plan
    from tfsconf.plan.state import StateOrigin, state_from_bundle

    env, bundle = staging
    records = {h.name: _record_of(env, bundle, h.name) for h in env.hosts}
    live = state_from_bundle(
        bundle_from_records(env.name, records), StateOrigin("live", "x"), "live"
    )
    desired = state_from_bundle(bundle.files, StateOrigin("none"), "spec")
    assert live.fingerprint == desired.fingerprint
    assert not make_plan(live, desired, env, spec="staging.yaml").has_changes
    # one host never applied: it is planned as new, the other one is unchanged
    del records["stg-2"]
    live = state_from_bundle(
        bundle_from_records(env.name, records), StateOrigin("live", "x"), "live"
    )
    plan = make_plan(live, desired, env, spec="staging.yaml")
    assert [(h.name, h.change) for h in plan.hosts] == [("stg-2", "create")]


def test_release_id_is_a_content_address() -> None:
    files = {"a/models.config": b"x", "warmup.json": b"{}"}
    assert release_id(files, {}) == release_id(dict(reversed(files.items())), {})
    assert release_id(files, {}) != release_id({**files, "warmup.json": b"{ }"}, {})
    assert release_id(files, {}) != release_id(files, {"gpu": "repo:tag"})
    assert release_id(files, {}).startswith("r-")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (base64.b64encode(b"{not json").decode(), "not valid JSON"),
        (base64.b64encode(b'{"generator": "other"}').decode(), "not written by tfsconf"),
        (
            base64.b64encode(b'{"generator": "tfsconf", "schema_version": 9}').decode(),
            "schema 9 is not supported",
        ),
    ],
)
def test_bad_records_are_clean_errors(raw: str, message: str) -> None:
    with pytest.raises(UserError, match=message):
        parse_record("h1", raw)
    assert parse_record("h1", "") is None


def test_rollback_targets() -> None:
    def rec(release: str, *history: str) -> HostRecord:
        return HostRecord("h", {"release": release, "history": [{"release": r} for r in history]})

    records = {
        "a": rec("r-3", "r-1", "r-2", "r-3"),
        "b": rec("r-1", "r-1"),
        "c": None,
        "d": rec("r-2", "r-1", "r-2", "r-2"),
    }
    targets, skipped = choose_targets(records, None)
    assert targets == {"a": "r-2", "d": "r-1"}
    assert skipped == {"b": "no earlier release", "c": "never applied"}
    targets, skipped = choose_targets(records, "r-1")
    assert targets == {"a": "r-1", "d": "r-1"}
    assert skipped["b"] == "already on r-1"


def test_report_table_and_verdict() -> None:
    report = ApplyReport("bed", "run1", stage="rollout")
    report.hosts = [
        HostReport("h1", "g", "applied", "r-1", 5),
        HostReport("h2", "g", "rolled-back", "r-2", 3, "rank: health gate: boom"),
        HostReport("h3", "g", "untouched", "r-3"),
    ]
    text = render_report(report)
    assert "Apply FAILED (stopped in rollout)" in text
    assert "h2    g      rolled-back" in text and "boom" in text
    assert not report.ok and report.changed == 8
    assert report.as_json()["hosts"][1]["error"] == "rank: health gate: boom"


def test_adapter_reports_failures_per_host(tmp_path: Path) -> None:
    # the interpreter named, as every inventory of the bed and of tfsconf's controller host
    # names it (Ansible's discovery would take whatever python3.1x is first on PATH here)
    inventory = {
        "all": {
            "hosts": {
                "localhost": {
                    "ansible_connection": "local",
                    "ansible_python_interpreter": sys.executable,
                }
            },
            "children": {"tfsconf_hosts": {"hosts": {"localhost": {}}}},
        }
    }
    result = ansible.run(
        "unlock.yml",
        inventory=inventory,
        extravars={"tfsconf_config_root": str(tmp_path)},  # tfsconf_run_id missing
        limit=["localhost"],
    )
    assert result.failed_hosts() == ["localhost"]
    failure = result.first_failure("localhost")
    assert failure is not None and "tfsconf_run_id" in failure.message
    result = ansible.run(
        "unlock.yml",
        inventory=inventory,
        extravars={"tfsconf_config_root": str(tmp_path), "tfsconf_run_id": "r1"},
        limit=["localhost"],
    )
    assert result.failed_hosts() == [] and result.status == "successful"
    assert result.changed == 0  # nothing was locked by r1
    with pytest.raises(UserError, match="missing from this installation"):
        ansible.run("nope.yml", inventory=inventory, extravars={})


def test_agent_refuses_unknown_actions() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "tfsconf.apply.agent"],
        input=json.dumps({"action": "explode", "address": "127.0.0.1", "port": 1}),
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1
    assert "unknown action 'explode'" in proc.stderr


def run_ansible_playbook(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """The venv's ansible-playbook with the project's modules and module_utils."""
    ansible_playbook = Path(sys.executable).parent / "ansible-playbook"
    return subprocess.run(
        [str(ansible_playbook), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        env={
            "PATH": f"{ansible_playbook.parent}:/usr/bin:/bin",
            "ANSIBLE_LIBRARY": str(REPO / "playbooks" / "library"),
            "ANSIBLE_MODULE_UTILS": str(REPO / "playbooks" / "module_utils"),
            "ANSIBLE_ACTION_PLUGINS": str(REPO / "playbooks" / "action_plugins"),
            "HOME": str(Path.home()),
        },
    )


def test_the_agent_action_answers_as_a_command_and_sends_nothing_in_check_mode(
    tmp_path: Path,
) -> None:
    """tfsconf_agent runs the agent inside Ansible's worker: a refused request fails the task
    with the agent's own message and status, as the command task it replaced did; a check
    run skips it (a reload is a change)."""
    request = json.dumps({"action": "explode", "address": "127.0.0.1", "port": 1})
    play = [
        {
            "hosts": "localhost",
            "gather_facts": False,
            "tasks": [
                {
                    "tfsconf_agent": {"python": sys.executable, "request": request},
                    "register": "answer",
                    "failed_when": False,
                },
                {"ansible.builtin.debug": {"msg": "ANSWER {{ answer | to_json | b64encode }}"}},
            ],
        }
    ]
    (tmp_path / "play.yml").write_text(json.dumps(play))
    answers = []
    for extra in ([], ["--check"]):
        proc = run_ansible_playbook(
            "-i", "localhost,", "-c", "local", *extra, "play.yml", cwd=tmp_path
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        line = next(x for x in proc.stdout.splitlines() if "ANSWER " in x)
        encoded = line.split("ANSWER ", 1)[1].split('"', 1)[0]
        answers.append(json.loads(base64.b64decode(encoded)))
    ran, checked = answers
    assert ran["rc"] == 1 and ran["stderr_lines"] == ["unknown action 'explode'"], ran
    assert ran["msg"] == "non-zero return code" and not ran.get("skipped"), ran
    assert checked.get("skipped") is True and "rc" not in checked, checked


@pytest.mark.parametrize(
    "playbook",
    sorted(p.name for p in (REPO / "playbooks").glob("*.yml")),
)
def test_playbooks_pass_ansible_syntax_check(playbook: str) -> None:
    # play keywords are templated at parse time: the two rollout settings are needed
    settings = '{"tfsconf_serial": 1, "tfsconf_max_fail_percentage": 0}'
    proc = run_ansible_playbook(
        "--syntax-check", "-i", "localhost,", "-e", settings, playbook, cwd=REPO / "playbooks"
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_host_module_runs_with_the_hosts_ansible_python_interpreter(tmp_path: Path) -> None:
    """A host's `ansible_python_interpreter` is the Python its modules run with, tfsconf's
    too: Ansible puts it in place of a module's `#!/usr/bin/python` line only
    (executor/module_common.py `_get_shebang`: the variable read is
    `ansible_<basename>_interpreter`, so `#!/usr/bin/python3` reads
    `ansible_python3_interpreter` and ran /usr/bin/python3 on every host, whatever its
    inventory said)."""
    used = tmp_path / "used"
    python = tmp_path / "python-of-the-host"
    python.write_text(f'#!/bin/sh\necho "$$" >> {used}\nexec /usr/bin/python3 "$@"\n')
    python.chmod(0o755)
    modules = sorted(p.stem for p in (REPO / "playbooks" / "library").glob("*.py"))
    assert {"tfsconf_host", "tfsconf_model_sync", "tfsconf_process"} <= set(modules)
    play = [
        {
            "hosts": "all",
            "gather_facts": False,
            # no arguments: each module refuses them, after its interpreter started
            "tasks": [{module: {}, "ignore_errors": True} for module in modules],
        }
    ]
    book = tmp_path / "play.yml"
    book.write_text(json.dumps(play))
    proc = run_ansible_playbook(
        *("-i", "localhost,", "-c", "local", str(book)),
        *("-e", f"ansible_python_interpreter={python}"),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    refused = [
        line
        for line in proc.stdout.splitlines()
        if line.startswith("fatal:") and "missing required arguments" in line
    ]
    assert len(refused) == len(modules), proc.stdout
    assert len(used.read_text().split()) == len(modules), proc.stdout


def test_repair_work_activations_carry_every_key_the_playbooks_read(staging) -> None:  # type: ignore[no-untyped-def]
    """A repair (hand edits, a server not serving its record) activates servers through the
    same tasks as apply: each key those tasks read (`a.<key>`) is in its activations."""
    import re

    from tfsconf.apply.drift import Drift, repair_work

    env, bundle = staging
    host = env.hosts[0]
    record = _record_of(env, bundle, host.name)
    server = host.servers[0].name
    read = set()
    for book in (REPO / "playbooks" / "tasks").glob("*.yml"):
        read |= set(re.findall(r"\ba\.([a-z_]+)", book.read_text()))
    assert {"kind", "config_poll_seconds", "reload_deadline"} <= read
    for found, kind in [
        ([Drift(server, "models.config: edited on the host", config_only=True)], "hot-reload"),
        ([Drift(server, "mixed: version(s) [1] not AVAILABLE (nothing)")], "restart"),
    ]:
        work = repair_work(env, record, found, health_timeout=5)
        (activation,) = work["activations"]
        assert activation["kind"] == kind
        assert read <= set(activation), sorted(read - set(activation))
        assert activation["reload_deadline"] > 0
