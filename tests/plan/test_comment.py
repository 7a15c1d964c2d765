"""The pull-request comment at fleet scale: hosts with identical changes are grouped, the
summary comes first, and the comment fits GitHub's limit (truncated with a note past it).

The plans are the golden version-bump plan (tests/plan/testdata/golden/version_bump) with
its hosts cloned under new names, so the renderer sees the planner's real output shape."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest

from tfsconf.plan.document import load_plan_document
from tfsconf.plan.model import FileDiff, HostPlan, Plan
from tfsconf.plan.render import GITHUB_COMMENT_LIMIT, group_hosts, render_markdown

GOLDEN = Path(__file__).parent / "testdata" / "golden" / "version_bump" / "plan.json"


def golden_plan() -> Plan:
    (plan,) = load_plan_document(json.loads(GOLDEN.read_text()), str(GOLDEN))
    return plan


def rename(host: HostPlan, name: str) -> HostPlan:
    """The same changes on another host (its addresses and bundle paths follow the name)."""

    def path(text: str) -> str:
        return text.replace(f"hosts/{host.name}/", f"hosts/{name}/", 1)

    def files(items: tuple[FileDiff, ...]) -> tuple[FileDiff, ...]:
        return tuple(dataclasses.replace(f, path=path(f.path)) for f in items)

    return dataclasses.replace(
        host,
        name=name,
        address=f"10.9.{len(name)}.1",
        servers=tuple(
            dataclasses.replace(s, host=name, files=files(s.files)) for s in host.servers
        ),
        actions=tuple(
            dataclasses.replace(a, address=a.address.replace(host.name, name, 1))
            for a in host.actions
        ),
        files=files(host.files),
    )


def fleet(plan: Plan, hosts: int) -> Plan:
    template = plan.hosts[0]
    return dataclasses.replace(
        plan, hosts=tuple(rename(template, f"rank-x{i}") for i in range(1, hosts + 1))
    )


def test_hosts_with_identical_changes_are_one_section() -> None:
    plan = fleet(golden_plan(), 40)
    assert len(group_hosts(plan.hosts)) == 1
    text = render_markdown([plan])
    assert text.count("<details>") == 1
    assert "<code>rank-x1</code>, <code>rank-x2</code> and 38 more (ranking)" in text
    assert "The same changes on 40 hosts:" in text
    assert "and 20 more. Shown for `rank-x1`." in text


def test_a_different_change_on_one_host_gets_its_own_section() -> None:
    plan = fleet(golden_plan(), 5)
    odd = plan.hosts[2]
    server = dataclasses.replace(odd.servers[0], reasons=("something else",))
    hosts = list(plan.hosts)
    hosts[2] = dataclasses.replace(odd, servers=(server, *odd.servers[1:]))
    groups = group_hosts(hosts)
    assert [[h.name for h in g] for g in groups] == [
        ["rank-x1", "rank-x2", "rank-x4", "rank-x5"],
        ["rank-x3"],
    ]


def test_the_summary_comes_first() -> None:
    text = render_markdown([fleet(golden_plan(), 3)])
    first = text.splitlines()[2]
    assert first.startswith("- 📝 **production**: Plan:")
    assert text.index("**Risks**") < text.index("<details>")


def test_a_comment_past_the_limit_is_cut_at_a_section_with_a_note() -> None:
    plan = golden_plan()
    # every host different: 300 sections, far past the limit
    hosts = []
    for i in range(300):
        host = rename(plan.hosts[0], f"rank-y{i}")
        server = dataclasses.replace(host.servers[0], reasons=(f"reason {i}",))
        hosts.append(dataclasses.replace(host, servers=(server, *host.servers[1:])))
    big = dataclasses.replace(plan, hosts=tuple(hosts))
    full = render_markdown([big])
    assert len(full) > GITHUB_COMMENT_LIMIT
    cut = render_markdown([big], max_chars=GITHUB_COMMENT_LIMIT, full_plan="plan-full.md")
    assert len(cut) <= GITHUB_COMMENT_LIMIT
    assert cut.count("<details>") == cut.count("</details>")
    note = re.search(r"> \*\*Truncated:\*\* (\d+) of (\d+) sections are not shown", cut)
    assert note is not None, cut[-500:]
    shown = cut.count("<details>")
    assert int(note.group(1)) == 300 - shown
    assert "The full plan is in `plan-full.md`." in cut
    assert full.startswith(cut[: cut.index("\n\n> **Truncated:**")])


def test_a_limit_smaller_than_the_summary_is_refused() -> None:
    with pytest.raises(ValueError, match="too small"):
        render_markdown([fleet(golden_plan(), 2)], max_chars=50)
