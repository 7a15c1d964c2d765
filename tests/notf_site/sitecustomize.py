"""Makes TensorFlow and tensorflow-serving-api impossible to import in this process, as in a
base install (`pip install tfsconf`) that does not have them.

Put this directory on PYTHONPATH: Python imports ``sitecustomize`` at start-up. Every
attempt is appended to the file $TFSCONF_BLOCKED_IMPORT_LOG (when set), so a test also sees
an import that the code under test caught. The directory is taken off PYTHONPATH again for
child processes: ansible-playbook and the TF Serving stand-in of local test hosts are not
tfsconf and keep their imports.
"""

from __future__ import annotations

import importlib.abc
import os
import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType

BLOCKED = ("tensorflow", "tensorflow_serving")
HERE = os.path.dirname(os.path.abspath(__file__))


class TensorFlowBlocker(importlib.abc.MetaPathFinder):
    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None = None,
        target: ModuleType | None = None,
    ) -> ModuleSpec | None:
        if fullname.partition(".")[0] not in BLOCKED:
            return None
        log = os.environ.get("TFSCONF_BLOCKED_IMPORT_LOG")
        if log:
            with open(log, "a", encoding="utf-8") as handle:
                handle.write(fullname + "\n")
        raise ModuleNotFoundError(f"No module named {fullname!r} (blocked)", name=fullname)


sys.meta_path.insert(0, TensorFlowBlocker())
os.environ["PYTHONPATH"] = os.pathsep.join(
    entry
    for entry in os.environ.get("PYTHONPATH", "").split(os.pathsep)
    if entry and os.path.abspath(entry) != HERE
)
