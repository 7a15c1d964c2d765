"""The report of a failed image build (playbooks/tasks/image.yml), fast and without an
engine: the playbook's own failure task, run by ansible-playbook on the output a `docker
build` gives when apt cannot install the pin. The legacy builder streams a RUN step's stderr
wrapped in ANSI red (ESC[91m ... ESC[0m), which is how apt's `E:` line reaches the output;
the docker scenario 5 (test_docker_runtime.py) shows the same on a real engine."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
STEP = "Step 3/5 : RUN apt-get update  && apt-get install -y libgoogle-perftools4=2.10-1"
APT_ERROR = "E: Version '2.10-1' for 'libgoogle-perftools4' was not found"
LAST = "The command '/bin/bash -o pipefail -c apt-get update' returned a non-zero code: 100"


def build_failure_message(tmp_path: Path, stdout: list[str], stderr: list[str]) -> str:
    tasks = yaml.safe_load((REPO / "playbooks" / "tasks" / "image.yml").read_text())
    (task,) = [t for t in tasks if str(t["name"]).endswith(": build failed")]
    built = {"rc": 1, "stdout_lines": stdout, "stderr_lines": stderr}
    play = [
        {
            "hosts": "localhost",
            "gather_facts": False,
            "vars": {"built": built, "image": {"ref": "tfsconf/tfserving-cpu:t"}},
            "tasks": [
                {
                    "block": [task],
                    "rescue": [
                        {
                            "ansible.builtin.copy": {
                                "content": "{{ ansible_failed_result.msg }}",
                                "dest": str(tmp_path / "message"),
                            }
                        }
                    ],
                }
            ],
        }
    ]
    (tmp_path / "play.yml").write_text(json.dumps(play))
    env = {**os.environ, "ANSIBLE_LOCAL_TEMP": str(tmp_path / "tmp"), "ANSIBLE_NOCOLOR": "1"}
    proc = subprocess.run(
        [
            str(Path(sys.executable).parent / "ansible-playbook"),
            "-i",
            "localhost,",
            "-c",
            "local",
            "-e",
            f"ansible_python_interpreter={sys.executable}",
            str(tmp_path / "play.yml"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr  # failed, then rescued
    return (tmp_path / "message").read_text()


def test_apt_error_of_the_legacy_builder_reaches_the_report(tmp_path: Path) -> None:
    stdout = [
        "Step 1/5 : FROM tfsconf-test/serving-standin:2.18.0",
        STEP,
        " ---> Running in 0123456789ab",
        "Reading package lists...",
        # the stream message "ESC[91mE: ...\nESC[0m", split into lines
        f"\x1b[91m{APT_ERROR}",
        "\x1b[0m",
    ]
    message = build_failure_message(tmp_path, stdout, [LAST])
    assert message == (
        f"docker build of tfsconf/tfserving-cpu:t failed at {STEP}: {APT_ERROR} ({LAST})"
    )


def test_apt_error_without_colours_and_buildkit_steps(tmp_path: Path) -> None:
    stdout = ["#5 [2/3] RUN apt-get update  && apt-get install -y libgoogle-perftools4=2.10-1"]
    stderr = [f"#5 0.912 {APT_ERROR}", "ERROR: process did not complete successfully"]
    message = build_failure_message(tmp_path, stdout, stderr)
    assert f"failed at {stdout[0]}: {APT_ERROR} (" in message, message


def test_apt_error_inside_a_stdout_line_still_reaches_the_report(tmp_path: Path) -> None:
    """apt writes "Reading state information..." and its newline apart; the engine reads the
    step's stdout and stderr apart, so under load the red stderr chunk can land between
    them (seen in CI), and the "E:" line starts in the middle of a line."""
    stdout = [
        STEP,
        "Reading package lists...",
        f"Reading state information...\x1b[91m{APT_ERROR}",
        "\x1b[0m",
        "FILE: not an apt error",
    ]
    message = build_failure_message(tmp_path, stdout, [LAST])
    assert message == (
        f"docker build of tfsconf/tfserving-cpu:t failed at {STEP}: {APT_ERROR} ({LAST})"
    )
