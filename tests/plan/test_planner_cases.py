"""What the planner makes of particular changes, planned against a compiled bundle of the
unchanged spec (the staging example: per-model batching, a CPU server, latest policies)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tfsconf import api
from tfsconf.plan.model import Plan
from tfsconf.plan.state import BundleDirSource

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def planner(tmp_path: Path) -> Callable[[str, str], Plan]:
    """plan(old, new): staging with `old` replaced by `new` (once), against its own build."""
    env = tmp_path / "env"
    shutil.copytree(ROOT / "environments", env)
    spec = env / "staging.yaml"
    api.compile_environment(spec, tmp_path / "state")

    def plan(old: str, new: str) -> Plan:
        text = spec.read_text()
        assert text.count(old) == 1, old
        spec.write_text(text.replace(old, new))
        return api.plan_environment(spec, BundleDirSource(tmp_path / "state"))

    return plan


def servers(plan: Plan) -> dict[str, tuple[str, str | None]]:
    return {s.address: (s.change, s.activation) for h in plan.hosts for s in h.servers}


def risks(plan: Plan) -> dict[str, tuple[str, ...]]:
    return {r.kind: r.addresses for r in plan.risks}


def test_removing_a_per_model_batched_model_is_a_hot_reload(
    planner: Callable[[str, str], Plan],
) -> None:
    plan = planner("    models: [ctr, cvr]\n", "    models: [ctr]\n")
    assert servers(plan) == {
        "stg-1/stg-rank": ("update", "hot-reload"),
        "stg-2/stg-rank": ("update", "hot-reload"),
    }
    assert "model-unloaded" in risks(plan)


def test_changing_a_models_batching_restarts_its_server(
    planner: Callable[[str, str], Plan],
) -> None:
    plan = planner("      max_execution_batch_size: 32\n", "      max_execution_batch_size: 16\n")
    assert set(servers(plan).values()) == {("update", "restart")}
    reasons = plan.hosts[0].servers[0].reasons
    assert any(
        "per-model batching of cvr" in r and "max_execution_batch_size 32 -> 16" in r
        for r in reasons
    )


def test_a_renamed_server_is_removed_first_and_its_ports_reuse_is_flagged(
    planner: Callable[[str, str], Plan],
) -> None:
    plan = planner("name: stg-vision\n", "name: stg-vis2\n")
    for host in plan.hosts:
        assert [(s.name, s.activation) for s in host.servers] == [
            ("stg-vision", "remove"),
            ("stg-vis2", "create"),
        ]
    assert risks(plan)["port-reuse"] == ("stg-1/stg-vis2", "stg-2/stg-vis2")


def test_a_port_change_warns_that_clients_must_follow(
    planner: Callable[[str, str], Plan],
) -> None:
    plan = planner("    grpc_port: 8520\n", "    grpc_port: 8530\n")
    assert set(servers(plan).values()) == {("update", "restart")}
    (risk,) = [r for r in plan.risks if r.kind == "ports-changed"]
    assert "port 8520 -> 8530" in risk.message


def test_a_runtime_change_says_what_the_host_needs(planner: Callable[[str, str], Plan]) -> None:
    plan = planner("tfserving_version: ", "runtime: native\ntfserving_version: ")
    assert set(servers(plan).values()) == {("update", "restart")}
    for host in plan.hosts:
        for server in host.servers:
            assert server.reasons[0].startswith("runtime docker -> native")
            assert "tensorflow_model_server" in server.reasons[0]
    assert {(i.name, i.change) for i in plan.images} == {
        ("tfserving-cpu", "remove"),
        ("tfserving-gpu", "remove"),
    }


def test_a_moved_base_path_warns_that_loaded_versions_stay(
    planner: Callable[[str, str], Plan],
) -> None:
    plan = planner(
        "base_path: /srv/tfserving/models/cvr\n", "base_path: /srv/tfserving/models/cvr2\n"
    )
    assert set(servers(plan).values()) == {("update", "hot-reload")}
    assert "base-path-moved" in risks(plan)
    synced = [a.address for h in plan.hosts for a in h.actions if a.kind == "sync"]
    assert synced == [
        "stg-1/models/cvr/318",
        "stg-1/models/cvr/319",
        "stg-2/models/cvr/318",
        "stg-2/models/cvr/319",
    ]


def test_a_label_under_a_new_latest_policy_is_moved_before_the_policy_changes(
    planner: Callable[[str, str], Plan],
) -> None:
    plan = planner(
        "    versions: {policy: specific, versions: [1043, 1044]}\n"
        "    labels: {stable: 1043, canary: 1044}\n",
        "    versions: {policy: latest, count: 1}\n    labels: {stable: 1045}\n",
    )
    server = plan.hosts[0].servers[0]
    assert server.activation == "hot-reload"
    assert [p.wait_for for p in server.phases] == [(("ctr", 1045),), (), ()]
    assert server.phases[-1].steps == ("ctr: versions [1043, 1044, 1045] -> latest 1",)


def test_a_restart_does_not_hide_an_unloaded_version(
    planner: Callable[[str, str], Plan],
) -> None:
    """A batching change restarts the server in the same change that drops ctr 1043: the
    restart unloads 1043 as surely as a reload would, so clients pinned to it are warned."""
    planner("      batch_timeout_micros: 1000\n", "      batch_timeout_micros: 2000\n")
    plan = planner(
        "versions: [1043, 1044]}\n    labels: {stable: 1043, canary: 1044}",
        "versions: [1044]}\n    labels: {stable: 1044, canary: 1044}",
    )
    assert servers(plan)["stg-1/stg-rank"] == ("update", "restart")
    unloaded = [r for r in plan.risks if r.kind == "version-unloaded"]
    assert [r.message.split(":")[0] for r in unloaded] == ["ctr version(s) 1043 will be unloaded"]
    assert set(unloaded[0].addresses) == {"stg-1/stg-rank", "stg-2/stg-rank"}


def test_the_first_label_on_a_server_is_a_hot_reload(
    planner: Callable[[str, str], Plan],
) -> None:
    """Mirrors model_servers/server_core.cc UpdateModelVersionLabelMap: the label flag is
    on for every server, so a server's first label changes only models.config."""
    plan = planner(
        "    versions: {policy: latest, count: 2}\n",
        "    versions: {policy: latest, count: 2}\n    labels: {stable: 7}\n",
    )
    activations = {address: activation for address, (_, activation) in servers(plan).items()}
    assert activations and set(activations.values()) == {"hot-reload"}, activations
    for host in plan.hosts:
        for server in host.servers:
            assert not any("flag" in reason for reason in server.reasons), server.reasons


def test_dropping_the_last_labels_of_a_server_is_a_hot_reload(
    planner: Callable[[str, str], Plan],
) -> None:
    """Mirrors server_core.cc UpdateModelVersionLabelMap: with the flag always on, a server
    left without labels keeps its flags."""
    planner("    labels: {stable: 1043, canary: 1044}\n", "")
    plan = planner("    labels: {stable: 318, canary: 319}\n", "")
    assert set(servers(plan).values()) == {("update", "hot-reload")}, servers(plan)


def test_a_session_config_restarts_its_server(planner: Callable[[str, str], Plan]) -> None:
    """Mirrors model_servers/server.cc Server::BuildAndStart: the session config file is
    parsed once, at start, so adding it (and its flag) is a restart."""
    plan = planner(
        "    tensorflow_session_parallelism: 4\n",
        "    tensorflow_session_parallelism: 4\n    session_config: {allow_soft_placement: true}\n",
    )
    assert set(servers(plan).values()) == {("update", "restart")}, servers(plan)
    reasons = plan.hosts[0].servers[0].reasons
    assert "TensorFlow session config added (read only at start)" in reasons, reasons


def test_config_poll_hot_reloads_without_rpc_and_refuses_phased_label_moves(
    tmp_path: Path,
) -> None:
    """server_core.cc re-reads --model_config_file every model_config_file_poll_wait_seconds
    (PollModelConfig) and ReloadConfig refuses a label on a version that is not AVAILABLE:
    under poll apply sends no RPC and waits for the poll, so a label move that needs
    intermediate configs is refused at plan time."""
    from tfsconf.errors import UserError

    env = tmp_path / "env"
    shutil.copytree(ROOT / "environments", env)
    spec = env / "staging.yaml"
    poll = "    tensorflow_intra_op_parallelism: 4\n"
    text = spec.read_text().replace(
        poll, poll + "    model_config_reload: poll\n    model_config_file_poll_wait_seconds: 5\n"
    )
    spec.write_text(text)
    api.compile_environment(spec, tmp_path / "state")
    versions = "versions: {policy: specific, versions: [1043, 1044]}"
    spec.write_text(text.replace(versions, versions.replace("1044]", "1044, 1045]")))
    plan = api.plan_environment(spec, BundleDirSource(tmp_path / "state"))
    assert servers(plan)["stg-1/stg-rank"] == ("update", "hot-reload")
    reasons = plan.hosts[0].servers[0].reasons
    assert any("config poll within 5 s (no reload RPC" in r for r in reasons), reasons
    moved = text.replace(versions, versions.replace("1044]", "1044, 1045]")).replace(
        "canary: 1044", "canary: 1045"
    )
    spec.write_text(moved)
    with pytest.raises(UserError, match=r"model_config_reload is poll.*two changes"):
        api.plan_environment(spec, BundleDirSource(tmp_path / "state"))
