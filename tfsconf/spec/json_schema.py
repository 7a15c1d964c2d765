"""The JSON Schema of the environment spec, for editors (yaml-language-server): completion,
hover text and inline errors while a spec is written.

It says what `validate` says wherever a JSON Schema can say it: the value types' patterns
(tfsconf.spec.safe), bounds and enums from the models, no null anywhere (the YAML loader
refuses it), and the rules below that look at one block only. What needs the layers or a
second block (ports per host, base paths under model_root, batching by release, ...) stays
with validate. tests/spec/test_json_schema.py runs the bad specs through both.

The descriptions (hover text) are the attribute docstrings of the spec's modules
(_SPEC_MODULES), read here with ast when the schema is asked for. pydantic's
use_attribute_docstrings would read the module source for every class at import, and every
`tfsconf validate` would pay for it.
"""

from __future__ import annotations

import ast
import copy
import inspect
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

from tfsconf.spec import connection, model, settings
from tfsconf.spec.rules.spec import _SYSTEM_DIRS, _SYSTEM_TREES
from tfsconf.tfserving.flag_table import BATCHING_FIELD_SINCE, FLAG_SINCE
from tfsconf.tfserving.flags import OLDEST_SUPPORTED
from tfsconf.tfserving.images import IMAGE_BASES
from tfsconf.tfserving.warmup import MAX_WARMUP_RECORDS, SAMPLE_EXTENSIONS

_SPEC_MODULES = (settings, connection, model)
"""The modules whose classes make up the spec (their attribute docstrings are the hover
text)."""

DRAFT = "https://json-schema.org/draft/2020-12/schema"
TITLE = "tfsconf environment spec"


class _SpecJsonSchema(GenerateJsonSchema):
    """No null: every `X | None = None` of the models means "leave the key out"."""

    def nullable_schema(self, schema: core_schema.NullableSchema) -> JsonSchemaValue:
        return self.generate_inner(schema["schema"])

    def default_schema(self, schema: core_schema.WithDefaultSchema) -> JsonSchemaValue:
        if schema.get("default", ...) is None:
            return self.generate_inner(schema["schema"])
        json_schema = super().default_schema(schema)
        if "default" in json_schema:  # a block's default as data, without its unset keys
            json_schema["default"] = _without_none(json_schema["default"])
        return json_schema

    def dict_schema(self, schema: core_schema.DictSchema) -> JsonSchemaValue:
        """Keys checked by propertyNames: pydantic turns a key pattern into
        patternProperties, which lets any other key through."""
        json_schema = super().dict_schema(schema)
        patterns = json_schema.pop("patternProperties", None)
        if patterns:
            ((pattern, values),) = patterns.items()
            json_schema["propertyNames"] = {
                **json_schema.get("propertyNames", {}),
                "pattern": pattern,
            }
            json_schema["additionalProperties"] = values
        return json_schema

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False  # "Grpc Port" above the description says nothing the key does not


def _without_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    return value


def _one_paragraph(text: str) -> str:
    return "\n\n".join(" ".join(p.split()) for p in inspect.cleandoc(text).split("\n\n"))


def attribute_docstrings(source: str) -> dict[str, dict[str, str]]:
    """class name -> field -> the string literal written right below the field."""
    found: dict[str, dict[str, str]] = {}
    for node in ast.parse(source).body:
        if not isinstance(node, ast.ClassDef):
            continue
        docs = found.setdefault(node.name, {})
        for field, after in zip(node.body, node.body[1:], strict=False):
            if (
                isinstance(field, ast.AnnAssign)
                and isinstance(field.target, ast.Name)
                and isinstance(after, ast.Expr)
                and isinstance(after.value, ast.Constant)
                and isinstance(after.value.value, str)
            ):
                docs[field.target.id] = _one_paragraph(after.value.value)
    return found


def _describe(defs: dict[str, Any], classes: dict[str, type[BaseModel]]) -> None:
    docs: dict[str, dict[str, str]] = {}
    for module in _SPEC_MODULES:
        docs.update(attribute_docstrings(Path(str(module.__file__)).read_text(encoding="utf-8")))
    for name, schema in defs.items():
        cls = classes.get(name)
        if cls is None:
            continue
        for field, prop in schema.get("properties", {}).items():
            if "description" in prop:  # Field(description=...) in the model
                continue
            for base in cls.__mro__:
                text = docs.get(base.__name__, {}).get(field)
                if text:
                    prop["description"] = text
                    break
            values = prop.get("additionalProperties")
            if isinstance(values, dict) and "$ref" not in values and "description" in prop:
                values.setdefault("description", prop["description"])  # hover on a map's key


def _any_case(text: str) -> str:
    return "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else c for c in text)


def _above(n: int) -> str:
    """A regex of the decimal integers (no leading zero) greater than n."""
    digits = str(n)
    alternatives = [f"[1-9][0-9]{{{len(digits)},}}"]  # more digits
    for i, digit in enumerate(digits):
        if digit != "9":
            rest = len(digits) - i - 1
            higher = "9" if digit == "8" else f"[{int(digit) + 1}-9]"
            alternatives.append(digits[:i] + higher + (f"[0-9]{{{rest}}}" if rest else ""))
    return "(?:" + "|".join(alternatives) + ")"


def release_at_least(major: int, minor: int) -> str:
    """A regex of the releases "X.Y.Z" (as parse_version reads them, leading zeros too)
    that are major.minor or later."""
    minor_on = _above(minor - 1) if minor > 0 else "[0-9]+"
    return rf"^0*(?:{_above(major)}\.[0-9]+|{major}\.0*{minor_on})\.[0-9]+$"


def _release_before(major: int, minor: int) -> dict[str, Any]:
    """Matches a document whose tfserving_version is older than major.minor."""
    return {
        "properties": {"tfserving_version": {"not": {"pattern": release_at_least(major, minor)}}},
        "required": ["tfserving_version"],
    }


def _nested(path: tuple[str, ...], leaf: dict[str, Any]) -> dict[str, Any]:
    """`leaf` applied at `path` in a document: "*" is every item of a list or every value
    of a map."""
    if not path:
        return leaf
    inner = _nested(path[1:], leaf)
    if path[0] == "[]":
        return {"items": inner}
    if path[0] == "*":
        return {"additionalProperties": inner}
    return {"properties": {path[0]: inner}}


def _system_dirs_pattern() -> str:
    trees = "|".join(_SYSTEM_TREES)
    dirs = "|".join(d for d in _SYSTEM_DIRS if d != "/")
    return rf"^(?:(?:{trees})(?:/[\s\S]*)?|{dirs}|/dev/[\s\S]*)$"


def _one_block_rules(defs: dict[str, Any]) -> None:
    """Rules of tfsconf/spec/rules that hold for one block whatever the layers say: a
    value written in the block itself always wins over the layers above it."""
    # long: a flat list of independent rules, each under a comment naming the check in
    #   tfsconf/spec/rules it mirrors; kept together so the two are compared in one place.
    props = {name: schema["properties"] for name, schema in defs.items() if "properties" in schema}

    # rules/spec.py _check_warmup_spec, _check_sample_format (format auto or left out)
    props["Warmup"]["records"]["maximum"] = MAX_WARMUP_RECORDS
    extensions = "|".join(_any_case(ext[1:]) for ext in sorted(SAMPLE_EXTENSIONS))
    defs["Warmup"]["if"] = {"properties": {"format": {"const": "auto"}}}
    defs["Warmup"]["then"] = {
        "properties": {
            "samples": {
                "pattern": rf"\.(?:{extensions})$",
                "patternErrorMessage": "set format, or use a known extension: "
                + ", ".join(sorted(SAMPLE_EXTENSIONS)),
            }
        }
    }
    # rules/spec.py _check_versions: versions positive, listed once, at least one; a label
    # on a version <= 0 is refused under every policy
    versions = props["SpecificPolicy"]["versions"]
    versions.update(minItems=1, uniqueItems=True)
    versions["items"]["minimum"] = 1
    props["Model"]["labels"]["additionalProperties"]["minimum"] = 1
    # rules/names.py check_names
    props["Server"]["models"].update(minItems=1, uniqueItems=True)
    props["HostGroup"]["hosts"]["minItems"] = 1
    # rules/spec.py check_references: the allocator, a pre-built tag, the release
    defs["Allocator"]["allOf"] = [
        {
            "if": {"properties": {"kind": {"enum": ["tcmalloc", "system"]}}, "required": ["kind"]},
            "then": {"not": {"required": ["malloc_conf"]}},
        },
        {
            "if": {"properties": {"kind": {"const": "system"}}, "required": ["kind"]},
            "then": {"not": {"anyOf": [{"required": ["package"]}, {"required": ["library"]}]}},
        },
    ]
    defs["Image"]["dependentRequired"] = {"tag": ["registry"]}
    oldest = f"{OLDEST_SUPPORTED[0]}.{OLDEST_SUPPORTED[1]}"
    props["Environment"]["tfserving_version"]["allOf"] = [
        {
            "pattern": release_at_least(*OLDEST_SUPPORTED),
            "patternErrorMessage": f"TF Serving releases before {oldest} are not supported",
        }
    ]
    # rules/spec.py _check_roots
    for root in ("model_root", "config_root"):
        props["Paths"][root]["not"] = {"pattern": _system_dirs_pattern()}
    # rules/spec.py _check_batching_blocks: the batch thread pool is the server's
    model_level = copy.deepcopy(defs["BatchingParameters"])
    model_level["title"] = "ModelBatchingParameters"
    for name in ("num_batch_threads", "thread_pool_name"):
        del model_level["properties"][name]
    defs["ModelBatchingParameters"] = model_level
    for owner in ("ModelSettings", "Model"):
        props[owner]["batching"]["$ref"] = "#/$defs/ModelBatchingParameters"
    # rules/resolved.py _check_server and _check_gpus, on the server's own values
    parallelism = [f"tensorflow_{n}_parallelism" for n in ("session", "intra_op", "inter_op")]
    props["Server"]["file_system_poll_wait_seconds"]["minimum"] = 1
    defs["Server"]["dependentRequired"] = {"per_process_gpu_memory_fraction": ["gpu"]}
    defs["Server"]["allOf"] = [
        {
            "not": {
                "properties": {name: {"minimum": 1} for name in parallelism},
                "required": parallelism,
            }
        },
        {
            "if": {
                "properties": {"model_config_reload": {"const": "rpc"}},
                "required": ["model_config_reload"],
            },
            "then": {"properties": {"model_config_file_poll_wait_seconds": {"maximum": 0}}},
        },
        {
            "if": {
                "properties": {"model_config_reload": {"const": "poll"}},
                "required": ["model_config_reload"],
            },
            "then": {"properties": {"model_config_file_poll_wait_seconds": {"minimum": 1}}},
        },
        {
            "if": {"properties": {"rest_port": {"const": 0}}, "required": ["rest_port"]},
            "then": {
                "properties": {"monitoring": {"properties": {"prometheus": {"const": False}}}}
            },
        },
    ]


_SERVER_BATCHING = (("servers", "[]", "batching"), ("defaults", "server", "batching"))
_MODEL_BATCHING = (
    ("models", "[]", "batching"),
    ("servers", "[]", "model_defaults", "batching"),
    ("defaults", "model", "batching"),
)


def _release_rules(root: dict[str, Any]) -> None:
    """Rules that compare a block with tfserving_version: they hold at the root."""
    # long: a flat list of release rules, each under a comment naming the check it mirrors.
    rules: list[dict[str, Any]] = []
    # rules/resolved.py: a flag the release lacks, set on a server itself (a server's own
    # value is always the one its command line gets)
    since: dict[tuple[int, int], list[str]] = {}
    for name in model.ServerSettings.model_fields:
        flag = "tensorflow_session_config_file" if name == "session_config" else name
        if FLAG_SINCE.get(flag, OLDEST_SUPPORTED) > OLDEST_SUPPORTED:
            since.setdefault(FLAG_SINCE[flag], []).append(name)
    for release, names in sorted(since.items()):
        forbidden: dict[str, Any] = {"not": {"anyOf": [{"required": [n]} for n in sorted(names)]}}
        rules.append(
            {"if": _release_before(*release), "then": _nested(("servers", "[]"), forbidden)}
        )
    # rules/spec.py _check_batching_blocks: every batching block as written
    groups = [
        ("host_groups", "*", *path)
        for path in _SERVER_BATCHING + _MODEL_BATCHING
        if path[0] == "defaults"
    ]
    for name, release in sorted(BATCHING_FIELD_SINCE.items()):
        forbidden = {"not": {"required": [name]}}
        rules.append(
            {
                "if": _release_before(*release),
                "then": {
                    "allOf": [
                        _nested(p, forbidden)
                        for p in (*_SERVER_BATCHING, *_MODEL_BATCHING, *groups)
                    ]
                },
            }
        )
    # rules/spec.py check_references: outside the releases whose image tfsconf knows, the
    # allocator is system or names its package and library
    known = [
        {
            "pattern": release_at_least(*base.first),
            "not": {"pattern": release_at_least(base.last[0], base.last[1] + 1)},
        }
        for base in IMAGE_BASES
    ]
    allocator = {
        "anyOf": [
            {"properties": {"kind": {"const": "system"}}, "required": ["kind"]},
            {"required": ["package", "library"]},
        ]
    }
    rules.append(
        {
            "if": {
                "properties": {"tfserving_version": {"not": {"anyOf": known}}},
                "required": ["tfserving_version"],
            },
            "then": {
                "properties": {
                    "image": {"properties": {"allocator": allocator}, "required": ["allocator"]}
                },
                "required": ["image"],
            },
        }
    )
    root["allOf"] = rules


def environment_schema() -> dict[str, Any]:
    """The JSON Schema of an environment file (draft 2020-12)."""
    schema = model.Environment.model_json_schema(schema_generator=_SpecJsonSchema)
    defs = schema.setdefault("$defs", {})
    classes = {
        name: cls
        for name, cls in vars(model).items()
        if isinstance(cls, type)
        and issubclass(cls, BaseModel)
        and cls.__module__ in {m.__name__ for m in _SPEC_MODULES}
    }
    root = {key: value for key, value in schema.items() if key != "$defs"}
    defs_with_root = {**defs, "Environment": root}
    _describe(defs_with_root, classes)
    _one_block_rules(defs_with_root)
    _release_rules(root)
    defs.update((name, value) for name, value in defs_with_root.items() if name != "Environment")
    return {"$schema": DRAFT, **root, "title": TITLE, "$defs": defs}
