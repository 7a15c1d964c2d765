"""Every argument and option used by more than one command, declared once.

Commands take these aliases as parameter types, so a flag has one name, one metavar and one
help text wherever it appears. Options of a single command stay next to that command.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

SpecArg = Annotated[
    Path,
    typer.Argument(metavar="SPEC", help="Environment spec, e.g. environments/production.yaml."),
]
SpecsArg = Annotated[
    list[Path],
    typer.Argument(metavar="SPEC", help="Environment spec(s), e.g. environments/production.yaml."),
]
RootOpt = Annotated[
    Path | None,
    typer.Option(
        "--root",
        metavar="DIR",
        help="Directory tree the files a spec names (warmup samples) must lie in; "
        "default: the spec's own directory.",
    ),
]
Format = Literal["text", "json"]
FormatOpt = Annotated[
    Format, typer.Option("--format", metavar="text|json", help="Output format: text or json.")
]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Go ahead without asking.")]
HostVarsOpt = Annotated[
    Path | None,
    typer.Option(
        "--host-vars",
        metavar="FILE",
        help="YAML of host -> Ansible variables ('all' for every host): interpreter paths, "
        "bastions; the test bed's per-host root.",
    ),
]
LimitOpt = Annotated[
    str | None,
    typer.Option(
        "--limit",
        "-l",
        metavar="HOSTS_OR_GROUPS",
        help="As Ansible's --limit: act on these hosts only. Comma-separated host names, "
        "host group names, fnmatch patterns (rank-a*), 'all'; '!name' excludes, '&group' "
        "intersects.",
    ),
]
ForksOpt = Annotated[
    int | None,
    typer.Option(
        "--forks",
        "-f",
        metavar="N",
        min=1,
        max=1000,
        help="Hosts Ansible works on at once (its --forks); default: one per host of the run, "
        "at most 50.",
    ),
]
DEFAULT_FORKS: int | None = None
BreakLockOpt = Annotated[
    bool,
    typer.Option(
        "--break-lock",
        help="Take over host locks left by an apply that died (refused while its owner is "
        "alive: its process runs on this machine, or it renewed its lease recently).",
    ),
]
ForceBreakLockOpt = Annotated[
    bool,
    typer.Option(
        "--force-break-lock",
        help="Take over host locks even when their owner looks alive (only when you know "
        "that apply is gone: its controller is unreachable, say).",
    ),
]
PlanFormat = Annotated[
    Literal["text", "markdown", "json"],
    typer.Option(
        "--format",
        metavar="text|markdown|json",
        help="text (default), markdown (a pull-request comment) or json.",
    ),
]
ColourOpt = Annotated[
    Literal["auto", "always", "never"],
    typer.Option(
        "--color",
        metavar="auto|always|never",
        help="Colour the text format: auto (a terminal only), always, never.",
    ),
]
DiffOpt = Annotated[
    bool, typer.Option("--diff/--no-diff", help="Show unified diffs of the artifacts (text).")
]
GITHUB_COMMENT_LIMIT = 65_536
CommentLimitOpt = Annotated[
    int,
    typer.Option(
        "--comment-limit",
        metavar="CHARS",
        min=0,
        help="markdown: truncate whole sections past this size, with a note (GitHub's comment "
        "limit by default; 0: never).",
    ),
]
FullPlanOpt = Annotated[
    Path | None,
    typer.Option(
        "--full-plan",
        metavar="FILE",
        help="markdown: also write the untruncated plan here (for the CI job to upload); the "
        "truncation note names it.",
    ),
]
