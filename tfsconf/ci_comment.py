"""Create or update ONE pull-request comment holding a tfsconf plan (markdown).

    tfsconf plan environments/prod.yaml --base origin/main --format markdown \
        --full-plan plan-full.md > plan.md
    python -m tfsconf.ci_comment --github plan.md      # GitHub Actions
    python -m tfsconf.ci_comment --gitlab plan.md      # GitLab CI (merge request note)

The comment carries a hidden marker (`<!-- tfsconf-plan:KEY -->`, KEY from --key, default
"default"); the script finds the comment with that marker and edits it, or creates one, so
every push updates the same comment. Standard library only: it runs on any CI image with
python3.

GitHub: GITHUB_TOKEN, GITHUB_REPOSITORY (owner/name), the pull request number from --pr or
GITHUB_EVENT_PATH's pull_request.number, GITHUB_API_URL (default https://api.github.com).
GitLab: GITLAB_TOKEN (a project or personal access token with api scope), CI_API_V4_URL,
CI_PROJECT_ID, CI_MERGE_REQUEST_IID (or --pr).
The token is sent only in the Authorization / PRIVATE-TOKEN header and never printed.
Exit 0 when the comment was created or updated, 1 on any error.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

MAX_PAGES = 50
"""Comment pages read while looking for ours (100 a page): a bound, not a limit in practice."""
TIMEOUT_SECONDS = 30
GITHUB_LIMIT = 65_536
GITLAB_LIMIT = 1_000_000


class PostError(Exception):
    pass


class Api:
    def __init__(self, base: str, headers: dict[str, str]) -> None:
        if urllib.parse.urlsplit(base).scheme not in ("https", "http"):
            raise PostError(f"API URL {base!r}: only http(s) URLs")
        self.base = base.rstrip("/")
        self.headers = headers

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(  # noqa: S310 (http(s) only: checked in __init__)
            self.base + path, data=data, method=method, headers=dict(self.headers)
        )
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310
                payload = response.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read(2000).decode(errors="replace")
            raise PostError(f"{method} {path}: HTTP {exc.code}: {detail}") from None
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            raise PostError(f"{method} {path}: {exc}") from None
        return json.loads(payload) if payload else None


def _marker(key: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", key):
        raise PostError(f"--key {key!r}: use letters, digits, '.', '_' or '-' (at most 64)")
    return f"<!-- tfsconf-plan:{key} -->"


def _find(api: Api, list_path: str, marker: str) -> int | None:
    """The id of the first comment that carries our marker, reading page by page."""
    for page in range(1, MAX_PAGES + 1):
        sep = "&" if "?" in list_path else "?"
        comments = api.call("GET", f"{list_path}{sep}per_page=100&page={page}")
        if not isinstance(comments, list):
            raise PostError(f"GET {list_path}: expected a list of comments")
        for comment in comments:
            if marker in str(comment.get("body", "")):
                return int(comment["id"])
        if len(comments) < 100:
            return None
    raise PostError(f"more than {MAX_PAGES * 100} comments: not searching further")


def _require(name: str) -> str:
    value = os.environ.get(name, "")
    if not value:
        raise PostError(f"{name} is not set")
    return value


def _github_pr(explicit: str | None) -> str:
    if explicit:
        return explicit
    event = os.environ.get("GITHUB_EVENT_PATH")
    if event:
        with open(event, encoding="utf-8") as handle:
            number = json.load(handle).get("pull_request", {}).get("number")
        if number:
            return str(number)
    raise PostError("no pull request number: give --pr or run on a pull_request event")


def post(platform: str, body: str, key: str, pr: str | None) -> str:
    marker = _marker(key)
    text = f"{marker}\n{body}"
    if platform == "github":
        api = Api(
            os.environ.get("GITHUB_API_URL", "https://api.github.com"),
            {
                "Authorization": f"Bearer {_require('GITHUB_TOKEN')}",
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": "2022-11-28",
            },
        )
        repo = _require("GITHUB_REPOSITORY")
        number = _github_pr(pr)
        if len(text) > GITHUB_LIMIT:
            raise PostError(
                f"the comment is {len(text)} characters, over GitHub's {GITHUB_LIMIT}: "
                "render it with tfsconf plan --comment-limit (the default) and --full-plan"
            )
        found = _find(api, f"/repos/{repo}/issues/{number}/comments", marker)
        if found is None:
            api.call("POST", f"/repos/{repo}/issues/{number}/comments", {"body": text})
            return "created"
        api.call("PATCH", f"/repos/{repo}/issues/comments/{found}", {"body": text})
        return "updated"
    api = Api(_require("CI_API_V4_URL"), {"PRIVATE-TOKEN": _require("GITLAB_TOKEN")})
    project = urllib.parse.quote(_require("CI_PROJECT_ID"), safe="")
    number = pr or _require("CI_MERGE_REQUEST_IID")
    if len(text) > GITLAB_LIMIT:
        raise PostError(f"the comment is {len(text)} characters, over GitLab's {GITLAB_LIMIT}")
    notes = f"/projects/{project}/merge_requests/{number}/notes"
    found = _find(api, notes + "?sort=asc", marker)
    if found is None:
        api.call("POST", notes, {"body": text})
        return "created"
    api.call("PUT", f"{notes}/{found}", {"body": text})
    return "updated"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--github", action="store_const", const="github", dest="platform")
    where.add_argument("--gitlab", action="store_const", const="gitlab", dest="platform")
    parser.add_argument("plan", help="the markdown plan (tfsconf plan --format markdown)")
    parser.add_argument("--key", default="default", help="tells apart several plan comments")
    parser.add_argument("--pr", help="pull/merge request number (default: from the CI)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        with open(args.plan, encoding="utf-8") as handle:
            body = handle.read()
        outcome = post(args.platform, body, args.key, args.pr)
    except (PostError, OSError, ValueError) as exc:
        print(f"tfsconf.ci_comment: error: {exc}", file=sys.stderr)
        return 1
    print(f"tfsconf.ci_comment: {outcome} the plan comment ({len(body)} characters)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
