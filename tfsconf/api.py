"""The Python API; the CLI is a thin shell over these functions (tests call them directly)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tfsconf.spec.load import LoadedEnvironment, load_environment

if TYPE_CHECKING:  # compile pulls in protobuf and Jinja2; validate does not need them
    from tfsconf.compile import Bundle, Staleness


def validate(spec: Path | str) -> LoadedEnvironment:
    """Validate an environment file; raises SpecError listing every problem."""
    return load_environment(spec)


@dataclass(frozen=True, slots=True)
class CompileResult:
    loaded: LoadedEnvironment
    bundle: Bundle
    out: Path
    staleness: Staleness | None
    """Set by a --check run: how `out` differs from what the spec compiles to."""


def compile_environment(spec: Path | str, out: Path | str, *, check: bool = False) -> CompileResult:
    """Compile a spec into `out` (swapped in whole), or with check=True only compare."""
    from tfsconf.compile import build_bundle, check_bundle, write_bundle

    loaded = load_environment(spec)
    bundle = build_bundle(loaded.resolved)
    out_path = Path(out)
    if check:
        return CompileResult(loaded, bundle, out_path, check_bundle(bundle, out_path))
    write_bundle(bundle, out_path)
    return CompileResult(loaded, bundle, out_path, None)


def json_schema() -> str:
    """JSON Schema of the environment spec, for editors (yaml-language-server)."""
    from tfsconf.spec.model import Environment

    schema = Environment.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "tfsconf environment spec"
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"
