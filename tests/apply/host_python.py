#!/usr/bin/python3
"""The test hosts' Python for Ansible modules: /usr/bin/python3 with a bytecode cache for
the Python sources Ansible ships inside each module payload. Test-bed infrastructure only.

Each task Ansible runs on a host is an AnsiballZ payload: the module and the
ansible.module_utils it needs (basic.py and its imports, about 40 files), zipped. Python
imports them from the zip with zipimport, which never caches bytecode, so every task
compiles all of them again: measured with py-spy on a bed test, 23% of the test's whole
CPU. A real fleet host pays that on its own CPU; on the bed, three hosts pay it on the same
two cores as the controller, which makes the suite slow without testing anything more.

So the bed names this script as the hosts' `ansible_python_interpreter`. It replaces
zipimport's compile step with one that keeps the compiled code in a cache directory keyed
by the interpreter's bytecode magic, the file's path inside the payload and its source,
then runs the payload Ansible pipes to it on stdin exactly as `python3` reading stdin
would. The modules, their arguments, their results and Ansible itself are untouched; the
only difference is that a source seen before is not compiled again.

    host_python.py                  the payload on stdin; the cache directory in
                                    TFSCONF_HOST_BYTECODE (the bed's launcher sets it)
    host_python.py SCRIPT [ARGS]    exactly python3 SCRIPT ARGS (tfsconf starts the process
                                    runtime's supervisor with the hosts' interpreter)
"""

from __future__ import annotations

import hashlib
import importlib.util
import marshal
import os
import sys
import zipimport

CACHE = os.environ.get("TFSCONF_HOST_BYTECODE", "")
_compile_source = zipimport._compile_source  # type: ignore[attr-defined]


def _cached_compile(pathname: str, source: bytes) -> object:
    inner = pathname.split(".zip" + os.sep, 1)[-1]
    key = hashlib.sha256(importlib.util.MAGIC_NUMBER + inner.encode() + b"\0" + source).hexdigest()
    path = os.path.join(CACHE, key)
    try:
        with open(path, "rb") as handle:
            data = handle.read()  # marshal.load() on a file reads it a few bytes at a time
        return marshal.loads(data)
    except (OSError, EOFError, ValueError, TypeError):
        pass
    code = _compile_source(pathname, source)
    partial = f"{path}.{os.getpid()}"
    try:
        with open(partial, "wb") as handle:
            handle.write(marshal.dumps(code))
        os.replace(partial, path)  # whole or not at all, whoever else writes it
    except OSError:
        pass
    return code


def main() -> None:
    if len(sys.argv) > 1:  # a script or options (tfsconf starts its supervisor so): python3
        os.execv(sys.executable, [sys.executable, *sys.argv[1:]])
    if CACHE and os.path.isdir(CACHE):
        zipimport._compile_source = _cached_compile  # type: ignore[attr-defined]
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [entry for entry in sys.path if entry != here]  # as for stdin: no script dir
    payload = sys.stdin.buffer.read()
    namespace = sys.modules["__main__"].__dict__
    namespace.pop("__file__", None)  # as for a program read from stdin
    sys.argv[0] = "-"
    exec(compile(payload, "<stdin>", "exec"), namespace)  # Ansible's module payload


if __name__ == "__main__":
    main()
