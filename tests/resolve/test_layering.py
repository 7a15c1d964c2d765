"""Defaults layer environment -> host group -> server -> model, field by field, and each
resolved value remembers the spec path it came from."""

from __future__ import annotations

from pathlib import Path

from tfsconf.resolve import model as r
from tfsconf.validate.load import load_environment

SPEC = """\
environment: layered
tfserving_version: "2.18.0"
defaults:
  server:
    rest_api_num_threads: 4
    max_num_load_retries: 1
    monitoring: {prometheus: true, path: /env/metrics}
    batching: {num_batch_threads: 2, batch_timeout_micros: 100}
  model:
    signature_name: env_sig
host_groups:
  g:
    hosts:
      - {name: h1, address: 10.0.0.1, gpus: 1}
      - {name: h2, address: 10.0.0.2, gpus: 1}
    defaults:
      server:
        rest_api_num_threads: 8
        monitoring: {path: /group/metrics}
        batching: {num_batch_threads: 6, max_batch_size: 32}
      model:
        signature_name: group_sig
servers:
  - name: s1
    group: g
    gpu: 0
    max_num_load_retries: 9
    batching: {per_model: true}
    model_defaults:
      warmup: {samples: s.jsonl, records: 4}
    models: [a, b]
models:
  - name: a
    base_path: /srv/tfserving/models/a
    source: {kind: local, path: /data/a}
    batching: {max_batch_size: 16, allowed_batch_sizes: [4, 16]}
  - name: b
    base_path: /srv/tfserving/models/b
    source: {kind: local, path: /data/b}
    signature_name: own_sig
"""


def _load(tmp_path: Path) -> r.Environment:
    (tmp_path / "s.jsonl").write_text('{"x": [1.0]}\n')
    spec = tmp_path / "layered.yaml"
    spec.write_text(SPEC)
    return load_environment(spec).resolved


def test_server_settings_layer_field_by_field(tmp_path: Path) -> None:
    env = _load(tmp_path)
    server = env.hosts[0].servers[0]
    s = server.settings
    assert s.layered.rest_api_num_threads == 8  # group beats environment
    assert s.layered.max_num_load_retries == 9  # server beats environment
    assert s.prometheus is True  # environment, untouched by the group
    assert s.prometheus_path == "/group/metrics"  # nested block merged key by key
    assert s.origin("rest_api_num_threads", ()) == (
        "host_groups",
        "g",
        "defaults",
        "server",
        "rest_api_num_threads",
    )
    assert s.origin("monitoring.prometheus", ()) == (
        "defaults",
        "server",
        "monitoring",
        "prometheus",
    )
    assert s.origin("max_num_load_retries", ()) == ("servers", 0, "max_num_load_retries")


def test_per_model_batching_takes_server_batching_as_defaults(tmp_path: Path) -> None:
    env = _load(tmp_path)
    server = env.hosts[0].servers[0]
    assert server.settings.batching_enabled and server.settings.batching_per_model
    assert server.settings.batching is None  # no server-wide parameters file
    a, b = server.models
    assert a.batching is not None
    assert a.batching.max_batch_size == 16  # model beats group
    assert a.batching.num_batch_threads == 6  # group beats environment
    assert a.batching.batch_timeout_micros == 100  # environment
    assert a.batching.allowed_batch_sizes == [4, 16]
    assert b.batching is None  # no batching of its own: TF Serving will not batch it


def test_model_settings_layer_through_the_server(tmp_path: Path) -> None:
    env = _load(tmp_path)
    a, b = env.hosts[0].servers[0].models
    assert a.signature_name == "group_sig"
    assert b.signature_name == "own_sig"
    assert a.warmup is not None and a.warmup.records == 4
    assert a.warmup.samples == str(tmp_path / "s.jsonl")
    assert a.warmup.batch_sizes == (4, 16)  # the model's allowed batch sizes
    assert b.warmup is not None and b.warmup.batch_sizes == (1,)
    assert a.origin("warmup") == ("servers", 0, "model_defaults", "warmup")


def test_hosts_of_a_group_share_one_server_definition(tmp_path: Path) -> None:
    env = _load(tmp_path)
    h1, h2 = env.hosts
    assert h1.servers[0] is h2.servers[0]
    assert [h.name for h in env.hosts] == ["h1", "h2"]
    assert h1.connection.port == 22 and h1.connection.host_key_checking is True


def test_an_empty_batching_block_means_batch_with_the_defaults(tmp_path: Path) -> None:
    (tmp_path / "s.jsonl").write_text('{"x": [1.0]}\n')
    spec = tmp_path / "layered.yaml"
    spec.write_text(SPEC.replace("    signature_name: own_sig\n", "    batching: {}\n"))
    env = load_environment(spec).resolved
    b = env.hosts[0].servers[0].models[1]
    assert b.batching is not None  # not "unbatched": the server's defaults apply
    assert b.batching.num_batch_threads == 6
    assert b.batching.max_batch_size == 32
