"""Plan renderers: text for a terminal, markdown for a pull request, JSON for machines.

All three read the same Plan objects. Text and markdown show each distinct diff once; a
host with the same change as one shown before says so instead of repeating it.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence

from tfsconf.plan.document import plan_document
from tfsconf.plan.model import (
    DISRUPTION,
    Action,
    FileDiff,
    HostPlan,
    Plan,
    ServerPlan,
)

SYMBOL = {"create": "+", "remove": "-", "update": "~"}
ACTION_SYMBOL = {
    "create": "+",
    "remove": "-",
    "rebuild": "~",
    "restart": "~",
    "hot-reload": "~",
    "sync": "+",
    "warmup": "+",
}

_COLOURS = {"+": "\033[32m", "-": "\033[31m", "~": "\033[33m", "!": "\033[35m", "@": "\033[36m"}
_BOLD = "\033[1m"
_RESET = "\033[0m"


def render_json(plans: Sequence[Plan], *, workdir: str | None = None) -> str:
    document = plan_document(list(plans), workdir=workdir)
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


class _Text:
    def __init__(self, colour: bool) -> None:
        self.colour = colour
        self.lines: list[str] = []

    def paint(self, symbol: str, text: str) -> str:
        if not self.colour or symbol not in _COLOURS:
            return text
        return f"{_COLOURS[symbol]}{text}{_RESET}"

    def bold(self, text: str) -> str:
        return f"{_BOLD}{text}{_RESET}" if self.colour else text

    def add(self, text: str = "") -> None:
        self.lines.append(text)

    def diff(self, text: str, indent: str) -> None:
        for line in text.splitlines():
            mark = line[:1]
            if line.startswith(("+++", "---")):
                self.add(indent + self.bold(line))
            elif mark in "+-@":
                self.add(indent + self.paint(mark, line))
            else:
                self.add(indent + line)


def _action_line(action: Action) -> str:
    return f"{ACTION_SYMBOL[action.kind]} {action.address}  {action.kind}"


def render_text(plans: Sequence[Plan], *, colour: bool = False, diffs: bool = True) -> str:
    out = _Text(colour)
    for index, plan in enumerate(plans):
        if index:
            out.add()
        _text_plan(out, plan, diffs)
    return "\n".join(out.lines) + "\n"


def _text_plan(out: _Text, plan: Plan, show_diffs: bool) -> None:
    out.add(out.bold(f"Environment {plan.environment}") + f" ({plan.spec})")
    out.add(f"  against {plan.state.describe()}")
    if not plan.has_changes:
        out.add()
        out.add(plan.summary())
        return
    shown: dict[str, str] = {}
    for image in plan.images:
        out.add()
        symbol = SYMBOL[image.change]
        refs = f"{image.old_ref or '(none)'} -> {image.new_ref or '(none)'}"
        out.add(out.paint(symbol, f"{symbol} image {image.name}") + f"  {refs}")
        if image.file is not None and show_diffs:
            _text_diff(out, plan, image.file, shown, "      ")
    for host in plan.hosts:
        out.add()
        symbol = SYMBOL[host.change]
        head = f"{symbol} {host.name}"
        out.add(out.paint(symbol, head) + f"  ({host.group}, {host.address})  {host.summary()}")
        for server in host.servers:
            _text_server(out, plan, server, shown, show_diffs)
        for action in host.actions:
            out.add("    " + out.paint(ACTION_SYMBOL[action.kind], _action_line(action)))
            for reason in action.reasons:
                out.add(f"        {reason}")
        if show_diffs:
            for file in host.files:
                _text_diff(out, plan, file, shown, "      ")
    if plan.models:
        out.add()
        out.add(out.bold("Models:"))
        for change in plan.models:
            out.add(f"  {change.model}: {change.description} ({_where(change.addresses)})")
    if plan.risks:
        out.add()
        out.add(out.bold("Risks:"))
        for risk in plan.risks:
            out.add("  " + out.paint("!", f"! {risk.message}") + f" [{_where(risk.addresses)}]")
    out.add()
    out.add(out.bold(plan.summary()))


def _text_server(
    out: _Text, plan: Plan, server: ServerPlan, shown: dict[str, str], show_diffs: bool
) -> None:
    kind = server.activation or "update"
    symbol = SYMBOL[server.change] if server.change != "update" else "~"
    cost = f"  ({DISRUPTION[server.activation]})" if server.activation else ""
    out.add("    " + out.paint(symbol, f"{symbol} {server.address}  {kind}") + cost)
    for reason in server.reasons:
        out.add(f"        {reason}")
    for phase in server.phases:
        wait = ""
        if phase.wait_for:
            versions = ", ".join(f"{m}/{v}" for m, v in phase.wait_for)
            wait = f"; wait until {versions} AVAILABLE"
        out.add(
            f"        phase {phase.number}/{len(server.phases)}: {'; '.join(phase.steps)}{wait}"
        )
    if show_diffs:
        for file in server.files:
            _text_diff(out, plan, file, shown, "      ")


def _text_diff(out: _Text, plan: Plan, file: FileDiff, shown: dict[str, str], indent: str) -> None:
    first = shown.get(file.diff)
    if first is not None:
        out.add(f"{indent}{file.path}: {file.status}, same diff as {first}")
        return
    shown[file.diff] = file.path
    out.add(f"{indent}{out.bold(file.path)}: {file.status}")
    out.diff(plan.diffs[file.diff], indent + "  ")


def _where(addresses: Sequence[str], limit: int = 4) -> str:
    if len(addresses) <= limit:
        return ", ".join(addresses)
    return ", ".join(addresses[:limit]) + f" and {len(addresses) - limit} more"


# markdown --------------------------------------------------------------------------------


def _code(text: str) -> str:
    return "`" + text.replace("`", "'") + "`"


def _fence(text: str) -> str:
    fence = "```"
    while fence in text:
        fence += "`"
    return f"{fence}diff\n{text}{'' if text.endswith(chr(10)) else chr(10)}{fence}"


def _html_code(text: str) -> str:
    return f"<code>{html.escape(text)}</code>"


def _escape(text: str) -> str:
    for char in "\\*_[]<|#`":
        text = text.replace(char, "\\" + char)
    return text


GITHUB_COMMENT_LIMIT = 65_536
"""GitHub's limit on a comment body, in characters."""


def render_markdown(
    plans: Sequence[Plan], *, max_chars: int | None = None, full_plan: str | None = None
) -> str:
    """The plan as a pull-request comment: the summary first, then risks and model changes,
    then one collapsed section per distinct host change.

    With `max_chars`, whole sections are dropped from the end until the comment fits, and a
    note says how many and where the full plan is (`full_plan`, e.g. a CI artifact)."""
    head: list[str] = ["### tfsconf plan", ""]
    for plan in plans:
        mark = "✅" if not plan.has_changes else "📝"
        head.append(
            f"- {mark} **{_escape(plan.environment)}**: {_escape(plan.summary())} "
            f"_(against {_escape(plan.state.describe())})_"
        )
    sections: list[str] = ["\n".join(head)]
    for plan in plans:
        if plan.has_changes:
            first, *rest = _markdown_plan(plan)
            sections.append("\n".join(["", *first]))
            sections.extend("\n".join(part) for part in rest)
    text = "\n".join(sections) + "\n"
    if max_chars is None or len(text) <= max_chars:
        return text
    return _truncated(sections, max_chars, full_plan)


def _truncated(sections: list[str], max_chars: int, full_plan: str | None) -> str:
    where = f" The full plan is in {_code(full_plan)}." if full_plan else ""
    kept: list[str] = []
    size = 0
    for index, section in enumerate(sections):
        note = (
            f"\n\n> **Truncated:** {len(sections) - index} of {len(sections) - 1} sections are "
            f"not shown, to stay within {max_chars:,} characters.{where}\n"
        )
        if size + len(section) + 1 + len(note) > max_chars:
            if not kept:
                raise ValueError(f"a comment limit of {max_chars} characters is too small")
            return "\n".join(kept) + note
        kept.append(section)
        size += len(section) + 1
    return "\n".join(kept) + "\n"


def _markdown_plan(plan: Plan) -> list[list[str]]:
    """The sections of one environment's plan, each a list of lines."""
    sections: list[list[str]] = []
    lines = [f"#### {_escape(plan.environment)}", ""]
    if plan.risks:
        lines.append("**Risks**")
        lines.append("")
        for risk in plan.risks:
            lines.append(
                f"- ⚠️ {_escape(risk.message)} ({_where([_code(a) for a in risk.addresses])})"
            )
        lines.append("")
    if plan.models:
        lines.append("**Models**")
        lines.append("")
        for change in plan.models:
            where = _where([_code(a) for a in change.addresses])
            lines.append(f"- {_code(change.model)}: {_escape(change.description)} ({where})")
        lines.append("")
    sections.append(lines)
    shown: dict[str, str] = {}
    for image in plan.images:
        refs = f"{_html_code(image.old_ref or '(none)')} → {_html_code(image.new_ref or '(none)')}"
        lines = ["<details>"]
        lines.append(
            f"<summary>{SYMBOL[image.change]} image {_html_code(image.name)}: {refs}</summary>"
        )
        lines.append("")
        if image.file is not None:
            lines.extend(_markdown_diff(plan, image.file, shown))
        lines.append("</details>")
        lines.append("")
        sections.append(lines)
    for group in group_hosts(plan.hosts):
        sections.append(_markdown_host(plan, group, shown))
    return sections


def _host_relative(text: str, host: str) -> str:
    """An address or bundle path with its host part replaced, so that two hosts' equal
    changes compare equal (`rank-a1/rank-gpu0` and `hosts/rank-a1/...`)."""
    for prefix in (f"{host}/", f"hosts/{host}/"):
        if text.startswith(prefix):
            return "<host>/" + text[len(prefix) :]
    return text


def _host_key(host: HostPlan) -> tuple[object, ...]:
    """What a reviewer reads about a host, without its name: equal keys, equal changes."""

    def files(items: Sequence[FileDiff]) -> tuple[object, ...]:
        return tuple((_host_relative(f.path, host.name), f.status, f.diff) for f in items)

    return (
        host.group,
        host.change,
        tuple(
            (s.name, s.change, s.activation, s.reasons, s.phases, files(s.files))
            for s in host.servers
        ),
        tuple(
            (a.kind, _host_relative(a.address, host.name), a.reasons, a.model, a.version)
            for a in host.actions
        ),
        files(host.files),
    )


def group_hosts(hosts: Sequence[HostPlan]) -> list[list[HostPlan]]:
    """Hosts whose changes are identical, in plan order (a group sits where its first host
    is), so a comment on a 4,000-host fleet shows each distinct change once."""
    groups: dict[tuple[object, ...], list[HostPlan]] = {}
    for host in hosts:
        groups.setdefault(_host_key(host), []).append(host)
    return list(groups.values())


_LISTED_HOSTS = 20
"""Names a grouped host section lists in full; past it the rest is a count."""


def _markdown_host(plan: Plan, group: Sequence[HostPlan], shown: dict[str, str]) -> list[str]:
    host = group[0]
    names = _where([_html_code(h.name) for h in group], limit=2)
    summary = host.summary()
    if len(group) > 1:
        summary = summary.rstrip(".") + " on each."
    lines = [
        "<details>",
        f"<summary>{SYMBOL[host.change]} {names} ({html.escape(host.group)}): "
        f"{html.escape(summary)}</summary>",
        "",
    ]
    if len(group) > 1:
        listed = ", ".join(_code(h.name) for h in group[:_LISTED_HOSTS])
        rest = len(group) - _LISTED_HOSTS
        more = f" and {rest} more" if rest > 0 else ""
        lines.append(
            f"The same changes on {len(group)} hosts: {listed}{more}. Shown for {_code(host.name)}."
        )
        lines.append("")
    for server in host.servers:
        mark = SYMBOL[server.change]
        cost = f": _{_escape(DISRUPTION[server.activation])}_" if server.activation else ""
        lines.append(f"- {_code(f'{mark} {server.address}')} **{server.activation}**{cost}")
        for reason in server.reasons:
            lines.append(f"  - {_escape(reason)}")
        for phase in server.phases:
            wait = ""
            if phase.wait_for:
                wait = (
                    "; wait until "
                    + ", ".join(f"{m}/{v}" for m, v in phase.wait_for)
                    + " AVAILABLE"
                )
            steps = _escape("; ".join(phase.steps) + wait)
            lines.append(f"  - phase {phase.number}/{len(server.phases)}: {steps}")
    for action in host.actions:
        reasons = _escape("; ".join(action.reasons))
        symbol = ACTION_SYMBOL[action.kind]
        lines.append(f"- {_code(f'{symbol} {action.address}')} **{action.kind}**: {reasons}")
    lines.append("")
    for server in host.servers:
        for file in server.files:
            lines.extend(_markdown_diff(plan, file, shown))
    for file in host.files:
        lines.extend(_markdown_diff(plan, file, shown))
    lines.append("</details>")
    lines.append("")
    return lines


def _markdown_diff(plan: Plan, file: FileDiff, shown: dict[str, str]) -> list[str]:
    first = shown.get(file.diff)
    if first is not None:
        return [f"{_code(file.path)}: {file.status}, same diff as {_code(first)}", ""]
    shown[file.diff] = file.path
    return [f"{_code(file.path)}: {file.status}", "", _fence(plan.diffs[file.diff]), ""]
