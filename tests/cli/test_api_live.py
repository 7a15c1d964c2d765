"""The API of the live commands (apply, status, rollback), in-process, and `--limit`.

The hosts here are the machine itself through Ansible's local connection, each with its own
root directory (as the test bed does, without network namespaces or servers): enough to read
the hosts' state, plan, lock and refuse; rolling out needs the bed (tests/apply)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from cliprobe import tfsconf

from tfsconf import api
from tfsconf.apply.limit import limit_environment, resolve_limit
from tfsconf.errors import UserError

SPEC = """\
environment: fleet
tfserving_version: "2.18.0"
host_groups:
  rank-a:
    hosts:
      - {name: rank-a1, address: 127.0.0.2, gpus: 1}
      - {name: rank-a2, address: 127.0.0.3, gpus: 1}
      - {name: rank-a3, address: 127.0.0.4, gpus: 1}
  canary:
    hosts:
      - {name: canary1, address: 127.0.0.5}
servers:
  - {name: s, group: rank-a, gpu: 0, models: [m]}
  - {name: c, group: canary, models: [m]}
models:
  - {name: m, base_path: /srv/tfserving/models/m, source: {kind: local, path: /d/m}}
"""


@pytest.fixture
def spec(tmp_path: Path) -> Path:
    path = tmp_path / "fleet.yaml"
    path.write_text(SPEC)
    return path


@pytest.fixture
def env(spec: Path):  # type: ignore[no-untyped-def]
    return api.validate(spec).resolved


@pytest.mark.parametrize(
    ("pattern", "hosts"),
    [
        ("all", {"rank-a1", "rank-a2", "rank-a3", "canary1"}),
        ("*", {"rank-a1", "rank-a2", "rank-a3", "canary1"}),
        ("rank-a", {"rank-a1", "rank-a2", "rank-a3"}),
        ("rank-a2", {"rank-a2"}),
        ("rank-a1,canary1", {"rank-a1", "canary1"}),
        ("rank-a1:canary1", {"rank-a1", "canary1"}),
        ("rank-a*", {"rank-a", "rank-a1", "rank-a2", "rank-a3"} - {"rank-a"}),
        ("rank-a,!rank-a2", {"rank-a1", "rank-a3"}),
        ("!canary", {"rank-a1", "rank-a2", "rank-a3"}),
        ("all,&canary", {"canary1"}),
        ("rank-a*,&rank-a,!rank-a3", {"rank-a1", "rank-a2"}),
        ("~rank-a[12]$", {"rank-a1", "rank-a2"}),
        (" rank-a1 , canary ", {"rank-a1", "canary1"}),
    ],
)
def test_limit_has_ansibles_meaning(env, pattern: str, hosts: set[str]) -> None:  # type: ignore[no-untyped-def]
    assert resolve_limit(pattern, env).hosts == hosts


def test_limit_reports_terms_that_match_nothing(env) -> None:  # type: ignore[no-untyped-def]
    limit = resolve_limit("rank-a1,rank-z9,!nope", env)
    assert limit.hosts == {"rank-a1"}
    assert limit.unmatched == ("rank-z9", "!nope")


def test_limit_reads_a_file_of_terms(env, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    listing = tmp_path / "retry"
    listing.write_text("rank-a1\n\ncanary1\n")
    assert resolve_limit(f"@{listing}", env).hosts == {"rank-a1", "canary1"}


@pytest.mark.parametrize("pattern", ["nothing-here", "rank-a,&canary", "all,!all", " , "])
def test_a_limit_that_leaves_no_host_is_an_error(env, pattern: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(UserError):
        resolve_limit(pattern, env)


def test_limited_environment_keeps_only_the_chosen_hosts_groups_and_images(env) -> None:  # type: ignore[no-untyped-def]
    limited = limit_environment(env, resolve_limit("rank-a2", env))
    assert [h.name for h in limited.hosts] == ["rank-a2"]
    assert [(g.name, g.hosts) for g in limited.groups] == [("rank-a", ("rank-a2",))]
    assert {i.name for i in limited.images} == {s.image for s in limited.hosts[0].servers}
    assert len(limited.images) < len(env.images)


def _local_hosts(tmp_path: Path) -> Path:
    """Host variables making every host this machine, each under its own root."""
    root = tmp_path / "hosts"
    root.mkdir()
    path = tmp_path / "host_vars.yaml"
    path.write_text(
        "all:\n"
        "  ansible_connection: local\n"
        f"  ansible_python_interpreter: {sys.executable}\n"
        f"  tfsconf_root: {root}\n"
    )
    return path


@pytest.mark.slow  # three Ansible runs
def test_apply_in_process_plans_the_limited_hosts_and_refuses_before_any_change(
    spec: Path, tmp_path: Path
) -> None:
    host_vars = _local_hosts(tmp_path)
    prepared = api.prepare_apply(spec, host_vars=host_vars, limit="rank-a,!rank-a3", forks=2)
    assert sorted(hp.name for hp in prepared.plan.hosts) == ["rank-a1", "rank-a2"]
    assert {hp.change for hp in prepared.plan.hosts} == {"create"}
    assert prepared.has_work and not prepared.saved
    assert sorted(prepared.context.source.records) == ["rank-a1", "rank-a2"]
    assert prepared.context.forks == 2
    seen: list[tuple[str, str, str]] = []
    # the model source does not exist on this machine: refused under the locks, before
    # anything is changed on a host, and the locks are given back
    with pytest.raises(UserError, match="cannot list the versions of /d/m"):
        api.apply(prepared, progress=lambda host, task, outcome: seen.append((host, task, outcome)))
    assert {host for host, _, _ in seen if host} == {"rank-a1", "rank-a2"}
    state = tmp_path / "hosts" / "srv" / "tfserving" / "config" / ".tfsconf"
    # only the lock's flock guard (an empty file the host module keeps) is left
    assert state.is_dir() and [p.name for p in state.iterdir()] == ["lock.guard"]
    assert (state / "lock.guard").stat().st_size == 0


def test_a_saved_plan_cannot_be_limited(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="--limit does not apply to a saved plan"):
        api.prepare_apply(tmp_path / "plan.json", limit="rank-a1")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["status", "--limit", "nope"],
            "error: --limit 'nope' leaves no host of environment fleet",
        ),
        (["rollback", "--limit", "canary,&rank-a"], "leaves no host"),
        (["apply", "--forks", "0"], "Invalid value for '--forks'"),
    ],
)
def test_limit_and_forks_mistakes_are_plain_errors_before_any_host_is_read(
    spec: Path, args: list[str], message: str
) -> None:
    run = tfsconf(args[0], str(spec), *args[1:])
    assert run.returncode == 1
    assert message in run.stderr
    assert "Traceback" not in run.stderr and run.stdout == ""
