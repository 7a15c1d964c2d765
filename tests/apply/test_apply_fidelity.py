"""apply end to end on a one-host bed (local mode): what TF Serving reads, where and when,
and the revert paths of a failed host."""

from __future__ import annotations

from typing import Any

import pytest

from tfsconf.apply.serving import Endpoint, model_status

from .conftest import BedFactory
from .scenario import MODEL, Scenario

pytestmark = pytest.mark.slow

AUX_PORT = 8600
AUX: dict[str, Any] = {
    "name": "aux",
    "group": "fleet",
    "grpc_port": AUX_PORT,
    "rest_port": AUX_PORT + 1,
    "models": [MODEL],
    "file_system_poll_wait_seconds": 1,
    "max_num_load_retries": 0,
}


@pytest.fixture
def one_host(make_bed: BedFactory, tmp_path: Any, model_template: Any) -> Scenario:
    return Scenario(make_bed("local", 1), tmp_path / "work", model_template)


def states(scenario: Scenario, port: int = 8500, host: str = "h1") -> dict[int, str]:
    endpoint = Endpoint(scenario.bed.host(host).address, port)
    return {v: s for v, (s, _) in model_status(endpoint, MODEL).items()}


def test_removed_server_serves_again_when_its_host_rolls_back(one_host: Scenario) -> None:
    """A run that removes server `aux` and then fails on `rank` rolls the host back with
    `aux` restarted on its previous release and waited healthy on its own port, read from
    its recorded server.flags (work.py once read `srv.flags`, waited on port 0 and left
    the host `failed`)."""
    scenario = one_host
    scenario.write_spec([1], more_servers=[AUX])
    proc, _ = scenario.apply()
    assert proc.returncode == 0, proc.stderr[-4000:]
    release = scenario.current_release("h1")
    assert states(scenario, AUX_PORT) == {1: "AVAILABLE"}

    scenario.publish(2, fail_on=("h1",))
    scenario.write_spec([2], health_timeout=15)  # aux removed; version 2 fails to load
    proc, report = scenario.apply()
    assert proc.returncode == 1
    (host,) = report["hosts"]
    assert host["status"] == "rolled-back", host
    assert "version 2 failed to load" in host["error"]
    assert scenario.current_release("h1") == release
    assert scenario.current_release("h1", "aux") == release
    assert states(scenario, AUX_PORT) == {1: "AVAILABLE"}
    assert states(scenario).get(1) == "AVAILABLE"
    assert scenario.record("h1")["release"] == release  # type: ignore[index]
