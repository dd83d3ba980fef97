"""trailmill.validate reproduces the CLI's verdicts on damaged trails."""

from __future__ import annotations

import gzip
import json

import pytest

import trailmill
from conftest import TRAIL, run

ARN = "arn:aws:cloudtrail:us-east-1:462237097298:trail/synth-trail"
RANGE = dict(start_time="2024-01-01T00:00:00Z", end_time="2024-01-01T05:00:00Z")


def cli_verdicts(trailmill_bin, root):
    out = run(
        [trailmill_bin, "validate", root, "--all", "--bucket", "trailmill-synth", "--format", "json",
         "--verbose", "--start-time", RANGE["start_time"], "--end-time", RANGE["end_time"]]
    )
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    verdicts = sorted(
        (v["file"], v["status"], v.get("key"), v.get("problem")) for v in lines if v.get("type") == "file"
    )
    return out.returncode, verdicts


def mine(report):
    return sorted((v.kind, v.verdict, v.key, v.reason) for v in report.verdicts)


def logs(root):
    return sorted(p for p in root.rglob("*.json.gz") if "CloudTrail-Digest" not in str(p))


def test_an_intact_trail_is_valid():
    # One trail, one chain: its home account and region.
    report = trailmill.validate(TRAIL, trail_arn=ARN, bucket="trailmill-synth", **RANGE)
    assert report.ok and report.exit_code == 0 and not report.problems
    assert report.counts["valid_logs"] == 4 and report.counts["valid_digests"] == 2
    # Every trail found: 2 accounts x 2 regions.
    report = trailmill.validate(TRAIL, all=True, bucket="trailmill-synth", **RANGE)
    assert report.ok and len(report.trails) == 4
    assert report.counts["valid_logs"] == 16 and report.counts["valid_digests"] == 8


def test_damage_gives_the_clis_verdicts(trail_copy, trailmill_bin):
    files = [p for p in logs(trail_copy) if "/eu-west-1/" in str(p)]
    # Edit an event in one log file, delete another, and delete the first
    # digest of another chain (the second names it).
    with gzip.open(files[0], "rt") as f:
        text = f.read()
    with gzip.open(files[0], "wt") as f:
        f.write(text.replace('"eventName":"', '"eventName":"X', 1))
    files[1].unlink()
    digests = sorted(p for p in trail_copy.rglob("*.json.gz") if "CloudTrail-Digest" in str(p))
    digests = [p for p in digests if "/462237097298/" in str(p) and "/us-east-1/" in str(p)]
    digests[0].unlink()
    report = trailmill.validate(trail_copy, all=True, bucket="trailmill-synth", **RANGE)
    code, expected = cli_verdicts(trailmill_bin, trail_copy)
    assert mine(report) == expected
    assert report.exit_code == code == 1 and not report.ok
    reasons = {v.reason for v in report.problems}
    assert {"hash_mismatch", "not_found"} <= reasons, reasons
    table = report.to_arrow()
    assert table.num_rows == len(report.verdicts)
    assert set(table.column("verdict").to_pylist()) >= {"valid", "invalid"}
    assert {v.trail for v in report.verdicts} == {t["arn"] for t in report.trails}


def test_validation_that_cannot_run_raises_validation_error(tmp_path):
    with pytest.raises(trailmill.ValidationError):
        trailmill.validate(tmp_path, trail_arn=ARN, start_time="2024-01-01")
    with pytest.raises(ValueError):
        trailmill.validate(TRAIL, start_time="2024-01-01")
