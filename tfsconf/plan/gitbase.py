"""``--base <git ref>``: the same environment file at another commit, compiled in memory.

The spec's directory at that commit is exported with ``git archive`` into a temporary
directory, so relative paths in the old spec (warmup samples) resolve against the old
files, exactly as they did when that commit was reviewed. Nothing is checked out; the
working tree is never touched.
"""

from __future__ import annotations

import dataclasses
import io
import subprocess
import tarfile
import tempfile
from pathlib import Path

from tfsconf.errors import SpecError, UserError
from tfsconf.plan.safetar import extract_all
from tfsconf.plan.state import State, StateOrigin, empty_state, state_from_bundle

GIT_TIMEOUT_SECONDS = 120


def _git(cwd: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(
            ["git", "-C", str(cwd), *args],
            capture_output=True,
            check=False,
            timeout=GIT_TIMEOUT_SECONDS,
        )
    except FileNotFoundError:
        raise UserError("--base needs git, and git is not installed") from None
    except subprocess.TimeoutExpired:
        raise UserError(f"git {args[0]} took longer than {GIT_TIMEOUT_SECONDS} s") from None


def _shallow_hint(toplevel: Path, ref: str) -> str:
    """What to fetch when a CI checkout lacks the base: a shallow or single-branch clone
    (actions/checkout fetches one commit by default, GitLab CI 20 by default)."""
    shallow = _git(toplevel, "rev-parse", "--is-shallow-repository").stdout.decode().strip()
    remote, _, branch = ref.partition("/")
    remotes = _git(toplevel, "remote").stdout.decode().split()
    if branch and remote in remotes:
        fetch = f"git fetch --no-tags {remote} {branch}:refs/remotes/{remote}/{branch}"
    elif remotes:
        fetch = f"git fetch --no-tags {remotes[0]} {ref}"
    else:
        return ""
    if shallow == "true":
        return (
            f" (this clone is shallow, so the base is probably not fetched: run `{fetch}`, "
            "or check out with full history, e.g. actions/checkout's fetch-depth: 0)"
        )
    return f" (if it exists on the remote, fetch it first: `{fetch}`)"


class GitBaseSource:
    """The spec as of a git ref; the state is what that spec compiles to."""

    def __init__(self, spec: Path, ref: str) -> None:
        if not ref or ref.startswith("-") or any(c in ref for c in "\0\n"):
            raise UserError(f"--base {ref!r}: not a git ref")
        self.spec = spec
        self.ref = ref
        self._commit: str | None = None

    def _locate(self) -> tuple[Path, str, str]:
        """(repository top level, spec path inside it, commit id of the ref)."""
        spec_dir = self.spec.resolve().parent
        top = _git(spec_dir, "rev-parse", "--show-toplevel")
        if top.returncode != 0:
            raise UserError(f"--base {self.ref}: {self.spec} is not inside a git repository")
        toplevel = Path(top.stdout.decode().strip())
        relative = self.spec.resolve().relative_to(toplevel.resolve()).as_posix()
        found = _git(toplevel, "rev-parse", "--verify", "--quiet", f"{self.ref}^{{commit}}")
        if found.returncode != 0:
            raise UserError(
                f"--base {self.ref}: no such commit, branch or tag in {toplevel}"
                + _shallow_hint(toplevel, self.ref)
            )
        return toplevel, relative, found.stdout.decode().strip()

    def origin(self) -> StateOrigin:
        return StateOrigin("base", self.ref, self._commit or "")

    def load(self) -> State:
        from tfsconf.compile import build_bundle
        from tfsconf.validate.load import load_environment

        toplevel, relative, commit = self._locate()
        self._commit = commit
        exists = _git(toplevel, "cat-file", "-e", f"{commit}:{relative}")
        if exists.returncode != 0:
            return empty_state(
                StateOrigin("base", self.ref, f"{commit}; {relative} does not exist there")
            )
        directory = str(Path(relative).parent) if "/" in relative else "."
        archive = _git(toplevel, "archive", "--format=tar", commit, "--", directory)
        if archive.returncode != 0:
            message = archive.stderr.decode(errors="replace").strip()
            raise UserError(f"--base {self.ref}: git archive failed: {message}")
        shown = f"{self.ref}:{relative}"
        with tempfile.TemporaryDirectory(prefix="tfsconf-base-") as tmp:
            try:
                with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
                    extract_all(tar, Path(tmp))
            except tarfile.TarError as exc:  # a link out of the tree, say
                raise UserError(
                    f"--base {self.ref}: cannot export {directory} from that commit safely: {exc}"
                ) from exc
            spec_copy = Path(tmp) / relative
            try:
                loaded = load_environment(spec_copy)
            except SpecError as exc:
                renamed = tuple(
                    dataclasses.replace(d, file=d.file.replace(str(spec_copy), shown))
                    for d in exc.diagnostics
                )
                raise SpecError(
                    diagnostics=renamed, what=f"the base spec {shown} (plan compares against it)"
                ) from None
            bundle = build_bundle(loaded.resolved)
        return state_from_bundle(bundle.files, self.origin(), shown)
