"""TF Serving refuses all three parallelism settings only when all are > 0; otherwise a
session parallelism beside intra/inter-op parallelism is silently ignored: say so."""

from __future__ import annotations

from pathlib import Path

import pytest

from tfsconf.diagnostics import format_path
from tfsconf.errors import SpecError
from tfsconf.validate.load import load_environment

SPEC = """\
environment: par
tfserving_version: "2.18.0"
defaults:
  server:
    tensorflow_session_parallelism: 4
host_groups:
  g:
    hosts: [{{name: h1, address: 10.0.0.1, gpus: 1}}]
    defaults:
      server: {{tensorflow_intra_op_parallelism: 8}}
servers:
  - {{name: s1, group: g, gpu: 0, enable_profiler: false, models: [a]{inter}}}
models:
  - {{name: a, base_path: /srv/tfserving/models/a, source: {{kind: local, path: /d/a}}}}
"""


def _write(tmp_path: Path, inter: str) -> Path:
    path = tmp_path / "par.yaml"
    path.write_text(SPEC.format(inter=inter))
    return path


@pytest.mark.parametrize("inter", ["", ", tensorflow_inter_op_parallelism: 0"])
def test_session_beside_intra_op_is_a_warning_at_its_origin(tmp_path: Path, inter: str) -> None:
    loaded = load_environment(_write(tmp_path, inter))
    warnings = [(format_path(w.path), w.line, w.message) for w in loaded.warnings]
    assert warnings == [
        (
            "defaults.server.tensorflow_session_parallelism",
            5,
            "ignored by TF Serving while intra-op or inter-op parallelism is set "
            "(for server 's1', servers[0])",
        )
    ]


def test_all_three_positive_is_an_error_at_the_server(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as raised:
        load_environment(_write(tmp_path, ", tensorflow_inter_op_parallelism: 2"))
    [error] = [d for d in raised.value.diagnostics if d.severity == "error"]
    assert format_path(error.path) == "servers[0].tensorflow_inter_op_parallelism"
    assert "cannot all be set at once" in error.message
