"""ModelReport as text (for people) or JSON (for apply and CI): one renderer per format."""

from __future__ import annotations

import json

from tfsconf.modelcheck.check import REPORT_SCHEMA_VERSION, ModelReport, VersionReport


def render_text(report: ModelReport) -> str:
    """A header, one block per version, base-path problems, and a summary line."""
    lines = [f"model {report.base_path} (signature {report.signature_name})"]
    for version in report.versions:
        status = "ok" if version.ok else f"{len(version.problems)} problem(s)"
        lines.append(
            f"  version {version.version} ({version.directory}/): {status}; {_facts(version)}"
        )
        lines.extend(f"    - {problem}" for problem in version.problems)
    lines.extend(f"  - {problem}" for problem in report.problems)
    lines.extend(f"  ignored by TF Serving: {name}" for name in report.ignored)
    checked = len(report.versions)
    if report.ok:
        lines.append(f"ok: {checked} version(s) checked, no problems")
    else:
        lines.append(f"{report.problem_count} problem(s) in {checked} checked version(s)")
    return "\n".join(lines) + "\n"


def render_json(report: ModelReport) -> str:
    """Canonical JSON (sorted keys) with a schema version."""
    document = {
        "schema_version": REPORT_SCHEMA_VERSION,
        "base_path": str(report.base_path),
        "signature_name": report.signature_name,
        "ok": report.ok,
        "problems": list(report.problems),
        "ignored": list(report.ignored),
        "versions": [
            {
                "version": v.version,
                "directory": v.directory,
                "ok": v.ok,
                "problems": list(v.problems),
                "variables_shards": v.shards,
                "saved_tensors": v.tensors,
                "warmup_records": v.warmup_records,
                "manifest": v.manifest,
            }
            for v in report.versions
        ],
    }
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def _facts(version: VersionReport) -> str:
    shards = "?" if version.shards is None else str(version.shards)
    warmup = "no warmup file" if version.warmup_records is None else (
        f"warmup {version.warmup_records} records"
    )  # fmt: skip
    return f"{shards} variables shard(s), {warmup}, manifest {version.manifest}"
