"""rollout.yml's optional tasks are left out of a run by tag (tfsconf.apply.optional) only
when no host of the run needs them: the tags in the playbooks are the module's, nothing on
the rescue path carries one, and each activation keeps every task its `when` would run."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any, cast

import jinja2
import pytest
import yaml

from tfsconf.apply.optional import TAGS, activation_tags, unused_tags
from tfsconf.contracts import Activation, HostWork

PLAYBOOKS = Path(__file__).resolve().parents[2] / "playbooks"


def _tasks(
    node: object, path: tuple[str, ...] = ()
) -> list[tuple[tuple[str, ...], dict[str, Any]]]:
    """(the block keys above it, task) for every task and play of a playbook file."""
    found = []
    if isinstance(node, list):
        for item in node:
            found += _tasks(item, path)
    elif isinstance(node, dict):
        if "name" in node or "hosts" in node:
            found.append((path, node))
        for key in ("tasks", "block", "rescue", "always"):
            if key in node:
                found += _tasks(node[key], (*path, key))
    return found


def _tagged() -> dict[str, list[tuple[tuple[str, ...], dict[str, Any]]]]:
    found: dict[str, list[tuple[tuple[str, ...], dict[str, Any]]]] = {}
    for book in sorted([*PLAYBOOKS.glob("*.yml"), *(PLAYBOOKS / "tasks").glob("*.yml")]):
        for path, task in _tasks(yaml.safe_load(book.read_text())):
            for tag in task.get("tags") or []:
                found.setdefault(tag, []).append((("@" + book.name, *path), task))
    return found


def test_the_playbooks_tag_exactly_the_optional_tasks_and_nothing_on_the_rescue_path() -> None:
    tagged = _tagged()
    assert set(tagged) == TAGS
    for tag, places in tagged.items():
        for path, task in places:
            book = path[0]
            assert book in ("@rollout.yml", "@activate.yml"), (tag, path, task["name"])
            assert "rescue" not in path and "always" not in path, (tag, path, task["name"])


ACTIVATIONS = [
    {"kind": kind, "config_poll_seconds": poll}
    for kind, poll in itertools.product(
        ["create", "remove", "rebuild", "restart", "hot-reload", "none"], [0, 30]
    )
]


@pytest.mark.parametrize(
    "a", ACTIVATIONS, ids=lambda a: f"{a['kind']}-poll{a['config_poll_seconds']}"
)
def test_an_activation_keeps_every_task_its_when_would_run(a: dict[str, Any]) -> None:
    """Each tagged task of tasks/activate.yml whose `when` is true for this activation (a
    reload result that failed, for the tasks that look at one) carries a tag the activation
    keeps; a task it leaves out is one its `when` skips."""
    keeps = activation_tags(cast(Activation, a))
    env = jinja2.Environment(autoescape=False)
    book = yaml.safe_load((PLAYBOOKS / "tasks" / "activate.yml").read_text())
    checked = 0
    for _path, task in _tasks(book):
        if not task.get("tags"):
            continue
        (tag,) = task["tags"]
        when = task.get("when")
        runs = bool(
            env.compile_expression(when)(a=a, reloaded={"rc": 75}) if when is not None else True
        )
        assert runs == (tag in keeps), (a, task["name"], when, keeps)
        checked += 1
    assert checked == 6


def _work(**fields: Any) -> HostWork:
    base = {"images": [], "syncs": [], "batching": [], "activations": []}
    return cast(HostWork, {**base, **fields})


def test_unused_tags_leaves_out_only_what_no_host_of_the_run_needs() -> None:
    reload = {"kind": "hot-reload", "config_poll_seconds": 0}
    plain = {"auth": None}
    bump = _work(syncs=[plain], activations=[reload])
    work = {"h1": bump, "h2": bump}
    assert unused_tags(work, ["h1", "h2"], staged={"h1", "h2"}) == sorted(
        TAGS - {"sync", "act_reload"}
    )
    # one host not staged by its lock: the stage stays, for every host (its `when` decides)
    assert "stage" not in unused_tags(work, ["h1", "h2"], staged={"h1"})
    # only the hosts of the run count
    other = _work(images=[{"ref": "x"}], syncs=[{"auth": {"secret": "s"}}], batching=[{}])
    work["h3"] = other
    assert {"images", "sync_auth", "batching"} <= set(unused_tags(work, ["h1"], {"h1"}))
    assert not {"images", "sync_auth", "batching", "stage"} & set(
        unused_tags(work, ["h1", "h3"], {"h1"})
    )
    created = _work(activations=[{"kind": "create", "config_poll_seconds": 0}])
    removed = _work(activations=[{"kind": "remove", "config_poll_seconds": 0}])
    assert unused_tags({"a": created, "b": removed}, ["a", "b"], {"a", "b"}) == sorted(
        TAGS - {"act_restart", "act_gate", "act_stop"}
    )
