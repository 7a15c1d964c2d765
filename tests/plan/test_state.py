"""The current state read from a compiled bundle directory, its fingerprint, and plans
computed against it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tfsconf import api
from tfsconf.errors import UserError
from tfsconf.plan.state import (
    MANIFEST,
    BundleDirSource,
    NoState,
    StateOrigin,
    empty_state,
    fingerprint,
    state_from_bundle,
)

PRODUCTION_HOSTS = {"rank-a1", "rank-a2", "rank-b1", "rank-b2", "vision-1", "vision-2"}


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory, repo_root_module: Path) -> Path:
    """production.yaml compiled once; tests that modify it work on a copy."""
    out = tmp_path_factory.mktemp("compiled") / "production"
    api.compile_environment(repo_root_module / "environments" / "production.yaml", out)
    return out


@pytest.fixture(scope="module")
def repo_root_module() -> Path:
    return Path(__file__).resolve().parents[2]


@pytest.fixture
def bundle(compiled: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "bundle"
    shutil.copytree(compiled, copy)
    return copy


def manifest_of(directory: Path) -> dict[str, object]:
    data: dict[str, object] = json.loads((directory / MANIFEST).read_text())
    return data


def write_manifest(directory: Path, manifest: dict[str, object]) -> None:
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True))


def artifacts_of(directory: Path) -> list[str]:
    artifacts = manifest_of(directory)["artifacts"]
    assert isinstance(artifacts, dict)
    return sorted(artifacts)


# reading a bundle ---------------------------------------------------------------------------


def test_state_from_a_compiled_bundle(compiled: Path) -> None:
    state = BundleDirSource(compiled).load()
    assert state.origin == StateOrigin("state", str(compiled))
    assert state.environment == "production"
    assert not state.empty
    assert set(state.hosts) == PRODUCTION_HOSTS
    rank = state.hosts["rank-a1"]
    assert (rank.address, rank.group, rank.runtime) == ("10.20.1.11", "ranking", "docker")
    assert set(rank.servers) == {"rank-gpu0", "rank-gpu1"}
    assert set(rank.files) == {"warmup.json"}
    gpu0 = rank.servers["rank-gpu0"]
    assert (
        gpu0.files["models.config"]
        == (compiled / "hosts/rank-a1/rank-gpu0/models.config").read_bytes()
    )
    assert {"models.config", "server.flags", "batching_parameters.txt"} <= set(gpu0.files)
    assert set(state.images) == {"tfserving-gpu"}
    image = state.images["tfserving-gpu"]
    assert image.dockerfile == (compiled / "images/tfserving-gpu/Dockerfile").read_bytes()
    assert image.ref.startswith("tfsconf/tfserving-gpu:production-2.18.0-")
    # every docker server runs the image the manifest names for it
    assert {s.image_ref for h in state.hosts.values() for s in h.servers.values()} == {image.ref}
    # every artifact of the bundle lands in exactly one host, server or image
    held = sum(
        len(h.files) + sum(len(s.files) for s in h.servers.values()) for h in state.hosts.values()
    ) + len(state.images)
    assert held == len(artifacts_of(compiled))


def test_fingerprint_is_stable_across_reads_and_matches_the_in_memory_bundle(
    compiled: Path, repo_root_module: Path
) -> None:
    first = BundleDirSource(compiled).load()
    second = BundleDirSource(compiled).load()
    assert len(first.fingerprint) == 64
    assert first.fingerprint == second.fingerprint
    assert fingerprint(first.hosts, first.images, first.environment) == first.fingerprint
    # the same spec compiled again in memory: the same fingerprint
    result = api.compile_environment(
        repo_root_module / "environments" / "production.yaml", compiled, check=True
    )
    assert result.staleness is not None and not result.staleness.stale
    in_memory = state_from_bundle(result.bundle.files, StateOrigin("none"), "memory")
    assert in_memory.fingerprint == first.fingerprint


def test_fingerprint_does_not_depend_on_the_origin(compiled: Path) -> None:
    files = {MANIFEST: (compiled / MANIFEST).read_bytes()}
    files.update({rel: (compiled / rel).read_bytes() for rel in artifacts_of(compiled)})
    a = state_from_bundle(files, StateOrigin("state", "a"), "a")
    b = state_from_bundle(files, StateOrigin("base", "main", "abc123"), "b")
    assert a.fingerprint == b.fingerprint


def test_fingerprint_changes_when_any_artifact_byte_changes(bundle: Path) -> None:
    original = BundleDirSource(bundle).load().fingerprint
    seen = {original}
    for rel in artifacts_of(bundle):
        path = bundle / rel
        data = path.read_bytes()
        middle = len(data) // 2
        path.write_bytes(data[:middle] + bytes([data[middle] ^ 0x01]) + data[middle + 1 :])
        changed = BundleDirSource(bundle).load().fingerprint
        assert changed not in seen, f"flipping one byte of {rel} left the fingerprint as it was"
        seen.add(changed)
        path.write_bytes(data)
    assert BundleDirSource(bundle).load().fingerprint == original


def test_fingerprint_changes_with_what_the_manifest_says(bundle: Path) -> None:
    original = BundleDirSource(bundle).load().fingerprint
    manifest = manifest_of(bundle)
    hosts = manifest["hosts"]
    assert isinstance(hosts, dict)
    hosts["vision-1"]["address"] = "10.20.3.99"
    write_manifest(bundle, manifest)
    moved = BundleDirSource(bundle).load()
    assert moved.hosts["vision-1"].address == "10.20.3.99"
    assert moved.fingerprint != original
    images = manifest["images"]
    assert isinstance(images, dict)
    images["tfserving-gpu"] = "tfsconf/tfserving-gpu:other"
    write_manifest(bundle, manifest)
    assert BundleDirSource(bundle).load().fingerprint not in {original, moved.fingerprint}


def test_empty_state() -> None:
    state = NoState("first deploy").load()
    assert state.empty
    assert state.environment is None
    assert state.origin == StateOrigin("none", "", "first deploy")
    assert state.origin.describe() == "no current state (everything is new): first deploy"
    assert state.fingerprint == fingerprint({}, {})
    assert state.fingerprint == empty_state(StateOrigin("none")).fingerprint


# a directory that is not a usable bundle ---------------------------------------------------


def load_error(directory: Path) -> str:
    with pytest.raises(UserError) as caught:
        BundleDirSource(directory).load()
    return str(caught.value)


def test_no_manifest(tmp_path: Path) -> None:
    (tmp_path / "models.config").write_text("model_config_list {}\n")
    assert load_error(tmp_path) == f"{tmp_path}: no manifest.json: not a tfsconf build"


def test_directory_that_does_not_exist(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    assert load_error(missing) == f"{missing}: no manifest.json: not a tfsconf build"


def test_manifest_that_is_not_json(bundle: Path) -> None:
    (bundle / MANIFEST).write_text("{not json")
    message = load_error(bundle)
    assert message.startswith(f"{bundle}: manifest.json is not valid JSON: ")


@pytest.mark.parametrize(
    "generator",
    [{"generator": "other-tool"}, {"schema_version": 2}, None],
    ids=["other-generator", "no-generator", "not-a-mapping"],
)
def test_manifest_not_written_by_tfsconf(bundle: Path, generator: dict[str, object] | None) -> None:
    if generator is None:
        (bundle / MANIFEST).write_text("[1, 2]")
    else:
        manifest = manifest_of(bundle)
        manifest.pop("generator")
        manifest.update(generator)
        write_manifest(bundle, manifest)
    assert load_error(bundle) == f"{bundle}: manifest.json was not written by tfsconf"


@pytest.mark.parametrize("version", [1, 3, "2", None])
def test_unsupported_schema_version(bundle: Path, version: object) -> None:
    manifest = manifest_of(bundle)
    manifest["schema_version"] = version
    write_manifest(bundle, manifest)
    message = load_error(bundle)
    assert message.startswith(
        f"{bundle}: manifest schema_version {version!r} is not supported (this tfsconf reads 2)"
    )
    assert "compile it again" in message


def test_listed_file_missing(bundle: Path) -> None:
    (bundle / "hosts/rank-b2/rank-gpu1/models.config").unlink()
    message = load_error(bundle)
    assert message.startswith(
        f"{bundle}: hosts/rank-b2/rank-gpu1/models.config is listed in manifest.json but "
        "cannot be read ("
    )
    assert message.endswith("): the bundle is incomplete")


@pytest.mark.parametrize("path", ["../x", "hosts/../../x", "/etc/hostname"])
def test_listed_path_escaping_the_bundle(bundle: Path, path: str) -> None:
    (bundle.parent / "x").write_text("outside\n")
    manifest = manifest_of(bundle)
    artifacts = manifest["artifacts"]
    assert isinstance(artifacts, dict)
    artifacts[path] = "0" * 64
    write_manifest(bundle, manifest)
    assert load_error(bundle) == (
        f"{bundle}: manifest.json lists a path outside the bundle: {path!r}"
    )


def test_listed_symlink_leading_out_of_the_bundle(bundle: Path) -> None:
    secret = bundle.parent / "secret"
    secret.write_text("not for the plan\n")
    link = bundle / "hosts/rank-a1/warmup.json"
    link.unlink()
    link.symlink_to(secret)
    assert load_error(bundle) == (
        f"{bundle}: manifest.json lists a path outside the bundle: 'hosts/rank-a1/warmup.json'"
    )


@pytest.mark.parametrize(
    ("key", "value", "problem"),
    [
        ("artifacts", ["hosts/x"], "artifacts is not a mapping"),
        ("hosts", [], "hosts is not a dict"),
        ("images", "tfserving-gpu", "images is not a dict"),
    ],
)
def test_manifest_with_wrong_shapes(bundle: Path, key: str, value: object, problem: str) -> None:
    manifest = manifest_of(bundle)
    manifest[key] = value
    write_manifest(bundle, manifest)
    assert load_error(bundle) == f"{bundle}: manifest.json: {problem}"


def test_image_named_by_a_server_but_not_in_the_bundle(bundle: Path) -> None:
    manifest = manifest_of(bundle)
    hosts = manifest["hosts"]
    assert isinstance(hosts, dict)
    hosts["vision-2"]["server_images"]["vision-gpu0"] = "tfserving-cpu"
    write_manifest(bundle, manifest)
    assert load_error(bundle) == (
        f"{bundle}: host vision-2 server vision-gpu0: unknown image tfserving-cpu"
    )


# planning against a state ------------------------------------------------------------------


def test_production_against_its_own_bundle_has_no_changes(
    compiled: Path, repo_root_module: Path
) -> None:
    spec = repo_root_module / "environments" / "production.yaml"
    plan = api.plan_environment(spec, BundleDirSource(compiled))
    assert plan.has_changes is False
    assert plan.summary() == "No changes."
    assert (plan.hosts, plan.images, plan.models, plan.risks) == ((), (), (), ())
    assert plan.diffs == {}
    assert plan.environment == "production"
    assert plan.spec == str(spec)
    assert plan.state == StateOrigin("state", str(compiled))
    assert plan.state_fingerprint == plan.desired_fingerprint


def test_production_against_no_state_creates_every_host(repo_root_module: Path) -> None:
    spec = repo_root_module / "environments" / "production.yaml"
    plan = api.plan_environment(spec, NoState())
    assert plan.has_changes
    assert plan.state.kind == "none"
    assert plan.state_fingerprint == fingerprint({}, {})
    assert {h.name for h in plan.hosts} == PRODUCTION_HOSTS
    assert {h.change for h in plan.hosts} == {"create"}
    servers = [s for h in plan.hosts for s in h.servers]
    assert len(servers) == 10
    assert {(s.change, s.activation) for s in servers} == {("create", "create")}
    assert all(s.phases == () for s in servers)  # a new server applies labels after loading
    assert [(i.name, i.change, i.old_ref) for i in plan.images] == [
        ("tfserving-gpu", "create", None)
    ]
    # every version of a specific policy is synced on every host that serves it
    syncs = {a.address for h in plan.hosts for a in h.actions if a.kind == "sync" and a.version}
    assert syncs == {
        f"{host}/models/{model}/{version}"
        for host in ("rank-a1", "rank-a2", "rank-b1", "rank-b2")
        for model, version in (("ctr", 1042), ("ctr", 1043), ("cvr", 318))
    }
    assert plan.summary() == (
        "Plan: 6 hosts to create, 10 servers to create, 16 model versions to sync, "
        "16 warmup files to generate."
    )


def test_a_spec_against_another_environments_state_is_refused(
    compiled: Path, repo_root_module: Path
) -> None:
    spec = repo_root_module / "environments" / "staging.yaml"
    with pytest.raises(UserError) as caught:
        api.plan_environment(spec, BundleDirSource(compiled))
    assert "the current state is environment 'production'" in str(caught.value)
    assert "environment 'staging'" in str(caught.value)


def test_a_changed_bundle_file_shows_up_in_the_plan(bundle: Path, repo_root_module: Path) -> None:
    flags = bundle / "hosts/vision-2/vision-gpu0/server.flags"
    flags.write_text(
        flags.read_text().replace("--rest_api_num_threads=16", "--rest_api_num_threads=8")
    )
    spec = repo_root_module / "environments" / "production.yaml"
    plan = api.plan_environment(spec, BundleDirSource(bundle))
    assert plan.has_changes
    assert [(h.name, h.change) for h in plan.hosts] == [("vision-2", "update")]
    (server,) = plan.hosts[0].servers
    assert server.activation == "restart"
    assert "flag --rest_api_num_threads: 8 -> 16" in server.reasons
    assert [f.path for f in server.files] == ["hosts/vision-2/vision-gpu0/server.flags"]


def test_a_host_at_a_new_address_is_set_up_from_scratch(
    bundle: Path, repo_root_module: Path
) -> None:
    manifest = manifest_of(bundle)
    hosts = manifest["hosts"]
    assert isinstance(hosts, dict)
    hosts["vision-1"]["address"] = "10.20.3.99"
    write_manifest(bundle, manifest)
    spec = repo_root_module / "environments" / "production.yaml"
    plan = api.plan_environment(spec, BundleDirSource(bundle))
    assert [(h.name, h.change, h.address) for h in plan.hosts] == [
        ("vision-1", "create", "10.20.3.11")
    ]
    assert {s.activation for s in plan.hosts[0].servers} == {"create"}
    assert [(r.kind, r.addresses) for r in plan.risks] == [("host-moved", ("vision-1",))]
    assert "10.20.3.99 to 10.20.3.11" in plan.risks[0].message


def test_fingerprint_covers_the_environment_name(bundle: Path) -> None:
    original = BundleDirSource(bundle).load().fingerprint
    manifest = manifest_of(bundle)
    manifest["environment"] = "staging"
    write_manifest(bundle, manifest)
    assert BundleDirSource(bundle).load().fingerprint != original


def test_warmup_enabled_for_a_served_model_generates_it_for_every_kept_version(
    tmp_path: Path, repo_root_module: Path
) -> None:
    env = tmp_path / "env"
    shutil.copytree(repo_root_module / "environments", env)
    spec = env / "production.yaml"
    text = spec.read_text()
    line = "    warmup: {samples: samples/ctr.jsonl, records: 64}\n"
    assert text.count(line) == 1
    spec.write_text(text.replace(line, ""))
    state = tmp_path / "state"
    api.compile_environment(spec, state)
    spec.write_text(text)
    plan = api.plan_environment(spec, BundleDirSource(state))
    ranking = [h for h in plan.hosts if h.group == "ranking"]
    assert len(ranking) == 4
    for host in ranking:
        assert host.servers == ()  # a warmup file is not a server change
        assert [(a.kind, a.address) for a in host.actions] == [
            ("warmup", f"{host.name}/models/ctr/1042"),
            ("warmup", f"{host.name}/models/ctr/1043"),
        ]
        assert all(a.reasons[0].startswith("warmup enabled; ") for a in host.actions)
    assert "warmup-not-reloaded" in {r.kind for r in plan.risks}


def test_manifest_names_that_are_not_strings(bundle: Path) -> None:
    manifest = manifest_of(bundle)
    hosts = manifest["hosts"]
    assert isinstance(hosts, dict)
    hosts["vision-1"]["server_images"] = {"vision-gpu0": ["x"]}
    write_manifest(bundle, manifest)
    assert "server and image names must be strings" in load_error(bundle)
