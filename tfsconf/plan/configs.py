"""models.config as the planner sees it, and the phased reloads a label move needs.

TF Serving accepts a version label only on a version that is already AVAILABLE, and checks
it when the reload arrives, before the new versions load. A reload that moves a label to a
version the server does not serve yet fails with FAILED_PRECONDITION. So such a change is
pushed in phases: add the version (labels unchanged), wait until it is AVAILABLE, move the
labels, then drop the old versions. A new server or a restart applies labels after its
first load and needs no phases.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from google.protobuf import text_format

from tfsconf.compile.explain import changes
from tfsconf.errors import UserError
from tfsconf.plan.model import Phase
from tfsconf.protos import serving_config_pb2

HEADER_PREFIX = "#"


@dataclass(frozen=True, slots=True)
class Policy:
    kind: str
    num_versions: int = 1
    versions: tuple[int, ...] = ()

    def describe(self) -> str:
        if self.kind == "specific":
            return "[" + ", ".join(str(v) for v in self.versions) + "]"
        if self.kind == "all":
            return "all"
        return f"latest {self.num_versions}"


@dataclass(frozen=True, slots=True)
class Entry:
    name: str
    base_path: str
    platform: str
    policy: Policy
    labels: Mapping[str, int] = field(default_factory=dict)


def _policy(config: serving_config_pb2.ModelConfig) -> Policy:
    which = config.model_version_policy.WhichOneof("policy_choice")
    if which == "specific":
        return Policy(
            "specific", versions=tuple(sorted(config.model_version_policy.specific.versions))
        )
    if which == "all":
        return Policy("all")
    if which == "latest":
        return Policy("latest", num_versions=config.model_version_policy.latest.num_versions or 1)
    return Policy("latest", num_versions=1)  # TF Serving's default


Parsed = tuple[serving_config_pb2.ModelServerConfig, dict[str, Entry]]


def parse(data: bytes, where: str) -> Parsed:
    """Parse a models.config."""
    message = serving_config_pb2.ModelServerConfig()
    try:
        text_format.Parse(data.decode("utf-8"), message)
    except (text_format.ParseError, UnicodeDecodeError) as exc:
        raise UserError(f"{where}: not a ModelServerConfig: {exc}") from exc
    entries = {
        c.name: Entry(c.name, c.base_path, c.model_platform, _policy(c), dict(c.version_labels))
        for c in message.model_config_list.config
    }
    return message, entries


def _header(data: bytes) -> str:
    lines = data.decode("utf-8").splitlines(keepends=True)
    return "".join(line for line in lines[:1] if line.startswith(HEADER_PREFIX))


@dataclass(frozen=True, slots=True)
class _Step:
    versions: tuple[int, ...] | None
    """A specific version list, or None: the policy is the new config's latest/all."""
    labels: Mapping[str, int]


def _model_steps(old: Entry | None, new: Entry) -> list[_Step] | None:
    """The models.config states one model goes through, or None when one push is safe."""
    if not new.labels:
        return None
    old_labels = dict(old.labels) if old else {}
    if old is None:
        loaded: set[int] = set()
    elif old.policy.kind == "specific":
        loaded = set(old.policy.versions)
    else:
        # under latest/all, only the labelled versions are known to be loaded: the server
        # accepted each label, which it does only for an AVAILABLE version
        loaded = set(old_labels.values())
    moved = {label: v for label, v in new.labels.items() if old_labels.get(label) != v}
    if all(v in loaded for v in moved.values()):
        return None
    # first push: every label whose target is already loaded takes its new value at once;
    # the others keep pointing where they did until their version is AVAILABLE
    first = {label: v for label, v in new.labels.items() if v in loaded}
    first.update(
        (label, v)
        for label, v in old_labels.items()
        if label in new.labels and new.labels[label] not in loaded
    )
    final = dict(new.labels)
    kept = loaded if old is not None and old.policy.kind == "specific" else set(first.values())
    if new.policy.kind != "specific":
        # the new latest/all policy may unload what a label still points at: hold the
        # loaded and the awaited versions under a specific list while the labels move,
        # and switch to the new policy last
        awaited = {v for v in moved.values() if v not in loaded}
        held = tuple(sorted(kept | awaited))
        return [_Step(held, first), _Step(held, final), _Step(None, final)]
    union = tuple(sorted(kept | set(new.policy.versions)))
    steps = [_Step(union, first), _Step(union, final)]
    if union != new.policy.versions:
        steps.append(_Step(new.policy.versions, final))
    return steps


def label_changes(
    before: Mapping[str, int], after: Mapping[str, int], *, steps: bool = False
) -> list[str]:
    """Label changes in words: as steps of a push ("move label ..."), or as a summary."""
    out = []
    for label, old, new in changes(before, after):
        if old is None:
            out.append(f"set label {label} -> {new}" if steps else f"label {label} set -> {new}")
        elif new is None:
            out.append(
                f"remove label {label} (was {old})"
                if steps
                else f"label {label} removed (was {old})"
            )
        else:
            out.append(f"{'move ' if steps else ''}label {label} {old} -> {new}")
    return out


def _describe_step(name: str, previous: _Step, step: _Step, policy: Policy | None) -> list[str]:
    out: list[str] = []
    if previous.versions is None or step.versions is None:
        if policy is not None and step.versions is not None:
            now = Policy("specific", versions=step.versions)
            out.append(f"{name}: versions {policy.describe()} -> {now.describe()}")
        elif policy is not None and previous.versions is not None:
            then = Policy("specific", versions=previous.versions)
            out.append(f"{name}: versions {then.describe()} -> {policy.describe()}")
        added: list[int] = []
        dropped: list[int] = []
    else:
        added = sorted(set(step.versions) - set(previous.versions))
        dropped = sorted(set(previous.versions) - set(step.versions))
    if added:
        out.append(
            f"{name}: add version{'s' if len(added) > 1 else ''} " + ", ".join(map(str, added))
        )
    out.extend(
        f"{name}: {text}" for text in label_changes(previous.labels, step.labels, steps=True)
    )
    if dropped:
        out.append(
            f"{name}: drop version{'s' if len(dropped) > 1 else ''} " + ", ".join(map(str, dropped))
        )
    return out


Phases = tuple[tuple[Phase, ...], dict[str, int]]


def phases(old_data: bytes, new_data: bytes, where: str) -> Phases:
    """The phased pushes from old to new models.config (empty when one push is safe), and
    how many phases each model takes."""
    return _phases(old_data, new_data, where, parse)


class ModelsConfigs:
    """parse and phases, remembered by content for as long as this object lives: the
    planner makes one per plan (hosts of a group share their files, every server of a group
    makes the same change, and printing the intermediate configs is the planner's dearest
    step), so nothing is held between plans."""

    __slots__ = ("_parsed", "_phases")

    def __init__(self) -> None:
        self._parsed: dict[bytes, Parsed] = {}
        self._phases: dict[tuple[bytes, bytes], Phases] = {}

    def parse(self, data: bytes, where: str) -> Parsed:
        found = self._parsed.get(data)
        if found is None:
            found = self._parsed[data] = parse(data, where)
        return found

    def phases(self, old_data: bytes, new_data: bytes, where: str) -> Phases:
        key = (old_data, new_data)
        found = self._phases.get(key)
        if found is None:
            found = self._phases[key] = _phases(old_data, new_data, where, self.parse)
        return found[0], dict(found[1])


def _phases(
    old_data: bytes, new_data: bytes, where: str, parse: Callable[[bytes, str], Parsed]
) -> Phases:
    """Over 60 lines: one pass over the phases, each model's previous step carried from
    phase to phase; split up, that state would be threaded through every helper."""
    # long: one pass over the phases carrying each model's previous step (see docstring).
    old_message, old_entries = parse(old_data, where)
    new_message, new_entries = parse(new_data, where)
    plans: dict[str, list[_Step]] = {}
    for name, entry in new_entries.items():
        steps = _model_steps(old_entries.get(name), entry)
        if steps is not None:
            plans[name] = steps
    if not plans:
        return (), {}
    total = max(len(steps) for steps in plans.values())
    header = _header(new_data)
    removed = [c for c in old_message.model_config_list.config if c.name not in new_entries]
    out: list[Phase] = []
    previous: dict[str, _Step] = {}
    for name, entry in old_entries.items():
        versions = entry.policy.versions if entry.policy.kind == "specific" else None
        previous[name] = _Step(versions, dict(entry.labels))
    for index in range(total):
        last = index == total - 1
        message = serving_config_pb2.ModelServerConfig()
        message.CopyFrom(new_message)
        steps_text: list[str] = []
        wait: list[tuple[str, int]] = []
        for config in message.model_config_list.config:
            steps = plans.get(config.name)
            if steps is None:
                if index == 0:
                    steps_text.extend(
                        _plain_change(old_entries.get(config.name), new_entries[config.name])
                    )
                continue
            step = steps[min(index, len(steps) - 1)]
            if step.versions is not None:
                config.model_version_policy.specific.ClearField("versions")
                config.model_version_policy.specific.versions.extend(step.versions)
            config.ClearField("version_labels")
            for label, version in sorted(step.labels.items()):
                config.version_labels[label] = version
            before = previous.get(config.name, _Step((), {}))
            old_entry = old_entries.get(config.name)
            policy: Policy | None = None
            if step.versions is None and before.versions is not None:
                policy = new_entries[config.name].policy  # switching to latest/all
            elif index == 0 and old_entry is not None and before.versions != step.versions:
                policy = old_entry.policy
            steps_text.extend(_describe_step(config.name, before, step, policy))
            if step.versions is None:
                pass  # the server picks the versions; labels were settled before
            elif before.versions is None:
                wait.extend((config.name, v) for v in step.versions)
            else:
                added = sorted(set(step.versions) - set(before.versions))
                wait.extend((config.name, v) for v in added)
            previous[config.name] = step
        if not last:
            for config in removed:
                message.model_config_list.config.add().CopyFrom(config)
        else:
            steps_text.extend(f"{c.name}: remove from the server" for c in removed)
        if not steps_text:
            steps_text.append("push the same models again (nothing else changes in this phase)")
        text = new_data.decode("utf-8") if last else header + text_format.MessageToString(message)
        out.append(Phase(index + 1, tuple(steps_text), tuple(wait), text))
    return tuple(out), {name: len(steps) for name, steps in plans.items()}


def _plain_change(old: Entry | None, new: Entry) -> list[str]:
    if old is None:
        return [f"{new.name}: add the model, versions {new.policy.describe()}"]
    if old == new:
        return []
    return [f"{new.name}: {describe_change(old, new, 1)}"]


def describe_change(old: Entry | None, new: Entry | None, phase_count: int) -> str:
    """One model's change on one server, in words (the per-model summary)."""
    if new is None:
        assert old is not None
        return f"removed (its versions stay on disk under {old.base_path})"
    parts: list[str] = []
    if old is None:
        parts.append(f"now served here: versions {new.policy.describe()}")
        labels = ", ".join(f"{k} -> {v}" for k, v in sorted(new.labels.items()))
        if labels:
            parts.append(f"labels {labels}")
    else:
        if old.platform != new.platform:
            parts.append(f"platform {old.platform} -> {new.platform}")
        if old.base_path != new.base_path:
            parts.append(f"base_path {old.base_path} -> {new.base_path}")
        if old.policy != new.policy:
            parts.append(f"versions {old.policy.describe()} -> {new.policy.describe()}")
        parts.extend(label_changes(old.labels, new.labels))
    text = "; ".join(parts)
    if phase_count > 1:
        text += f" in {phase_count} phases"
    return text
