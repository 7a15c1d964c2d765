"""`--limit HOSTS_OR_GROUPS`: Ansible's host patterns, over the hosts and groups of a spec.

As in Ansible (docs: "Patterns: targeting hosts and groups"; inventory/manager.py,
order_patterns and _evaluate_patterns): terms are separated by commas (or colons); each names
a host or a group, with fnmatch wildcards (`rank-a*`), `~` for a regular expression, and `all`
or `*` for every host; `&term` keeps only hosts the term also matches, `!term` drops the hosts
it matches; plain terms are unioned first, then intersections, then exclusions; a limit of
only `!` terms starts from every host; `@file` reads one term per line. A term that matches
nothing is reported; a limit that leaves no host is an error (Ansible refuses that too).

The limited environment is the spec's environment with only the chosen hosts (and the
groups and images they use): plan, locks, the rollout and its steps all work on it, so the
hosts outside the limit are neither read nor touched.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from pathlib import Path

from tfsconf.errors import UserError
from tfsconf.resolve import model as r


@dataclass(frozen=True, slots=True)
class Limit:
    pattern: str
    hosts: frozenset[str]
    unmatched: tuple[str, ...]
    """Terms that matched no host or group (Ansible warns about these)."""


def _terms(pattern: str) -> list[str]:
    terms: list[str] = []
    for raw in re.split(r"[,:]", pattern) if "~" not in pattern else pattern.split(","):
        term = raw.strip()
        if term.startswith("@"):
            path = Path(term[1:])
            try:
                lines = path.read_text().splitlines()
            except OSError as exc:
                raise UserError(f"--limit {term}: cannot read {path}: {exc.strerror}") from None
            terms.extend(line.strip() for line in lines if line.strip())
        elif term:
            terms.append(term)
    return terms


def _match(term: str, env: r.Environment) -> set[str]:
    hosts = [h.name for h in env.hosts]
    if term in ("all", "*"):
        return set(hosts)
    if term.startswith("~"):
        try:
            regex = re.compile(term[1:])
        except re.error as exc:
            raise UserError(f"--limit: bad regular expression {term!r}: {exc}") from None
        matches = regex.match
    else:
        matches = re.compile(fnmatch.translate(term)).match
    found = {h for h in hosts if matches(h)}
    for group in env.groups:
        if matches(group.name):
            found.update(group.hosts)
    return found


def resolve_limit(pattern: str, env: r.Environment) -> Limit:
    """The hosts of `env` that the Ansible host pattern `pattern` selects."""
    terms = _terms(pattern)
    if not terms:
        raise UserError(f"--limit {pattern!r}: no host or group named")
    regular = [t for t in terms if not t.startswith(("&", "!"))] or ["all"]
    chosen: set[str] = set()
    unmatched: list[str] = []
    for term in regular:
        found = _match(term, env)
        unmatched += [] if found else [term]
        chosen |= found
    for term in (t for t in terms if t.startswith("&")):
        found = _match(term[1:], env)
        unmatched += [] if found else [term]
        chosen &= found
    for term in (t for t in terms if t.startswith("!")):
        found = _match(term[1:], env)
        unmatched += [] if found else [term]
        chosen -= found
    if not chosen:
        raise UserError(
            f"--limit {pattern!r} leaves no host of environment {env.name} "
            f"(hosts: {', '.join(h.name for h in env.hosts)}; groups: "
            f"{', '.join(g.name for g in env.groups)})"
        )
    return Limit(pattern, frozenset(chosen), tuple(unmatched))


def limit_environment(env: r.Environment, limit: Limit) -> r.Environment:
    """`env` with only the hosts `limit` chose, the groups they belong to (with only them)
    and the images their servers run."""
    hosts = tuple(h for h in env.hosts if h.name in limit.hosts)
    groups = tuple(
        g._replace(hosts=tuple(h for h in g.hosts if h in limit.hosts))
        for g in env.groups
        if any(h in limit.hosts for h in g.hosts)
    )
    used = {s.image for h in hosts for s in h.servers}
    images = tuple(i for i in env.images if i.name in used)
    return env._replace(hosts=hosts, groups=groups, images=images)
