"""tfsconf_model_sync with credentials (its `auth` option): a webhdfs delegation token and
HTTP basic, against loopback stand-ins that refuse anything else; a failed run's result
(messages, invocation) never holds the secret."""

from __future__ import annotations

import base64
import json
import urllib.parse

from .harness import QuietHandler, WebHdfsHandler, serve
from .test_model_sync import Bed, assert_published, bed, source_files, source_version

__all__ = ["bed"]  # the fixture, imported for these tests

TOKEN = "HAAKdGZzY29uZi1kZWxlZ2F0aW9u"
PASSWORD = "pw-Zq8xK2vN"


class _TokenWebHdfs(WebHdfsHandler):
    """A namenode that opens files only with the right delegation= token."""

    def do_GET(self) -> None:
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        if self.path.startswith("/webhdfs/") and query.get("delegation") != [TOKEN]:
            self.send_error(403, "bad delegation token")
            return
        super().do_GET()


class _BasicAuth(QuietHandler):
    def do_GET(self) -> None:
        expected = "Basic " + base64.b64encode(f"svc:{PASSWORD}".encode()).decode()
        if self.headers.get("Authorization") != expected:
            self.send_error(401, "who are you")
            return
        super().do_GET()


def test_webhdfs_delegation_token(bed: Bed) -> None:
    source_version(bed)
    with serve(bed.tmp, _TokenWebHdfs) as address:
        source = {"kind": "webhdfs", "location": f"webhdfs://{address}/source"}
        wrong = bed.sync(source=source, auth={"scheme": "delegation", "secret": "nope"})
        run = bed.sync(source=source, auth={"scheme": "delegation", "secret": TOKEN})
    assert wrong.failed
    assert "HTTP 403" in wrong.result["msg"]
    assert f"http://{address}/webhdfs/v1/source/" in wrong.result["msg"]
    assert "nope" not in json.dumps(wrong.result)
    assert not run.failed, run.result
    assert TOKEN not in json.dumps(run.result)
    assert_published(bed, source_files(bed))


def test_basic_auth_failure_shows_no_password(bed: Bed) -> None:
    source_version(bed)
    with serve(bed.source, _BasicAuth) as address:
        source = {"kind": "http", "location": f"http://{address}/"}
        auth = {"scheme": "basic", "username": "svc", "secret": PASSWORD + "x"}
        run = bed.sync(source=source, auth=auth, retries=0)
    assert run.failed
    assert "HTTP 401" in run.result["msg"]
    assert PASSWORD not in json.dumps(run.result)
    assert not bed.version_dir.exists()
