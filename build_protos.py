"""Hatch build hook: generates the Python code of tfsconf's own .proto files.

tfsconf describes every TensorFlow and TF Serving message it reads or writes itself
(tfsconf/protos/*.proto: same field names, numbers and types, tfsconf's own proto
package), so the base install needs neither TensorFlow nor tensorflow-serving-api; some
(BatchingParameters, MonitoringConfig) are not in that wheel at all. grpcio-tools compiles
them at build time. The generated modules are build outputs and are not committed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface


def generate(root: Path) -> list[Path]:
    """Compile every tfsconf/protos/*.proto into *_pb2.py and *_pb2.pyi beside it."""
    import grpc_tools  # imported lazily: only the build needs it
    from grpc_tools import protoc

    well_known = Path(grpc_tools.__file__).parent / "_proto"

    protos = sorted((root / "tfsconf" / "protos").glob("*.proto"))
    args = [
        "grpc_tools.protoc",
        f"--proto_path={root}",
        f"--proto_path={well_known}",
        f"--python_out={root}",
        f"--pyi_out={root}",
        *[str(p.relative_to(root)) for p in protos],
    ]
    if protoc.main(args) != 0:
        raise RuntimeError(f"protoc failed on {[p.name for p in protos]}")
    return [p.with_name(p.stem + suffix) for p in protos for suffix in ("_pb2.py", "_pb2.pyi")]


class ProtoBuildHook(BuildHookInterface):  # type: ignore[type-arg]
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        root = Path(self.root)
        for generated in generate(root):
            build_data["artifacts"].append(str(generated.relative_to(root)))


if __name__ == "__main__":
    for path in generate(Path(__file__).resolve().parent):
        print(path)
