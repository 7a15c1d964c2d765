"""Run the tfsconf CLI as a user does, and probe whether a run initialised TensorFlow.

Shared by the CLI tests of several packages (importable because tests/ is on sys.path).
"""

from __future__ import annotations

import json
import subprocess
import sys

# Runs the CLI in a fresh interpreter, then reports whether TensorFlow was initialised:
# the real package module, its runtime (tensorflow.python), or its native library.
_NO_TF_PROBE = """
import json, sys
from tfsconf.cli.app import app
try:
    app(sys.argv[1:])
except SystemExit as exit:
    code = exit.code
with open("/proc/self/maps") as maps:
    native = "libtensorflow_framework" in maps.read()
print(json.dumps({
    "code": code,
    "tensorflow": "tensorflow" in sys.modules,
    "runtime": sorted(m for m in sys.modules if m.startswith("tensorflow.python"))[:3],
    "native": native,
}), file=sys.stderr)
"""


def tfsconf(*args: str) -> subprocess.CompletedProcess[str]:
    """`python -m tfsconf ARGS`, output captured."""
    return subprocess.run(
        [sys.executable, "-m", "tfsconf", *args], capture_output=True, text=True, check=False
    )


def probe(*args: str) -> dict[str, object]:
    """Run the CLI with ARGS; its exit code and what of TensorFlow it loaded."""
    done = subprocess.run(
        [sys.executable, "-c", _NO_TF_PROBE, *args], capture_output=True, text=True, check=False
    )
    result: dict[str, object] = json.loads(done.stderr.strip().splitlines()[-1])
    return result
