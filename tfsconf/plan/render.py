"""Plan renderers: text for a terminal, markdown for a pull request, JSON for machines.

All three read the same Plan objects. Text and markdown show each distinct diff once; a
host with the same change as one shown before says so instead of repeating it.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence

from tfsconf.plan.model import (
    DISRUPTION,
    Action,
    FileDiff,
    HostPlan,
    Plan,
    ServerPlan,
    plan_document,
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


def render_markdown(plans: Sequence[Plan]) -> str:
    lines: list[str] = ["### tfsconf plan", ""]
    for plan in plans:
        mark = "✅" if not plan.has_changes else "📝"
        lines.append(
            f"- {mark} **{_escape(plan.environment)}**: {_escape(plan.summary())} "
            f"_(against {_escape(plan.state.describe())})_"
        )
    for plan in plans:
        if plan.has_changes:
            lines.extend(["", *_markdown_plan(plan)])
    return "\n".join(lines) + "\n"


def _markdown_plan(plan: Plan) -> list[str]:
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
    shown: dict[str, str] = {}
    for image in plan.images:
        refs = f"{_html_code(image.old_ref or '(none)')} → {_html_code(image.new_ref or '(none)')}"
        lines.append("<details>")
        lines.append(
            f"<summary>{SYMBOL[image.change]} image {_html_code(image.name)}: {refs}</summary>"
        )
        lines.append("")
        if image.file is not None:
            lines.extend(_markdown_diff(plan, image.file, shown))
        lines.append("</details>")
        lines.append("")
    for host in plan.hosts:
        lines.extend(_markdown_host(plan, host, shown))
    return lines


def _markdown_host(plan: Plan, host: HostPlan, shown: dict[str, str]) -> list[str]:
    lines = [
        "<details>",
        f"<summary>{SYMBOL[host.change]} {_html_code(host.name)} ({html.escape(host.group)}): "
        f"{html.escape(host.summary())}</summary>",
        "",
    ]
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
