"""trailmill.scan of s3:// URLs against a real S3 API (moto)."""

from __future__ import annotations

import trailmill
from conftest import INVICTUS, source_records


def test_scan_of_an_s3_prefix_reads_every_event(moto):
    table = trailmill.scan("s3://datasets/invictus-ir/CloudTrail/").read_all()
    assert table.num_rows == 2900
    assert sorted(table.column("raw").to_pylist()) == source_records(INVICTUS)
    objects = set(table.column("source_object").to_pylist())
    assert all(o.startswith("s3://datasets/invictus-ir/CloudTrail/") for o in objects)


def test_a_missing_bucket_is_reported(moto):
    errors = []
    table = trailmill.scan("s3://no-such-bucket/x/", on_error=errors.append).read_all()
    assert table.num_rows == 0
    assert errors and "no-such-bucket" in str(errors[0])
