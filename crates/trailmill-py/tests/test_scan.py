"""trailmill.scan and trailmill.events on real CloudTrail data, checked
against an independent reader and against the CLI's Parquet sink."""

from __future__ import annotations

import gzip
import json
import shutil

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import trailmill
from conftest import BAD, GOOD_RECORD, INVICTUS, ODD_RECORD, STRATUS, TRAIL, run, source_records, write_odd_trail


def test_invictus_scans_to_exactly_2900_rows_with_each_record_byte_identical():
    table = trailmill.scan(INVICTUS).read_all()
    assert table.num_rows == 2900
    assert sorted(table.column("raw").to_pylist()) == source_records(INVICTUS)
    ids = table.column("event_id").to_pylist()
    assert len(set(ids)) == 2900
    assert {json.loads(r)["eventID"] for r in table.column("raw").to_pylist()} == set(ids)


def test_stratus_bare_arrays_scan_to_exactly_310_rows_byte_identical():
    table = trailmill.scan(STRATUS).read_all()
    assert table.num_rows == 310
    # Pretty-printed records keep their line breaks: the text is the source's.
    assert sorted(table.column("raw").to_pylist()) == source_records(STRATUS)


def test_columns_and_values_equal_the_parquet_sinks(tmp_path, trailmill_bin):
    lake = tmp_path / "lake"
    out = run([trailmill_bin, "process", INVICTUS, "--sink", f"parquet:{lake}", "--no-state", "--quiet"])
    assert out.returncode == 0, out.stderr
    files = sorted(lake.rglob("*.parquet"))
    assert files
    # Each file alone: the Hive directories are partitions, not columns.
    sink = pa.concat_tables([pq.read_table(f, partitioning=None) for f in files])
    scanned = trailmill.scan(INVICTUS).read_all()
    assert scanned.schema.equals(sink.schema), f"{scanned.schema}\n!=\n{sink.schema}"
    order = lambda t: t.sort_by([("event_id", "ascending")])  # noqa: E731
    assert order(scanned).equals(order(sink))


def test_batches_respect_batch_size_and_threads_do_not_change_the_rows():
    reader = trailmill.scan(INVICTUS, batch_size=100, threads=1)
    sizes = [b.num_rows for b in reader]
    assert max(sizes) <= 100 and sum(sizes) == 2900
    one = trailmill.scan(INVICTUS, threads=1).read_all().column("event_id").to_pylist()
    many = trailmill.scan(INVICTUS, threads=4).read_all().column("event_id").to_pylist()
    assert sorted(one) == sorted(many)


def test_filters_choose_events_as_the_cli_does(trailmill_bin):
    cli = run([trailmill_bin, "process", INVICTUS, "--event-name", "Describe*", "--errors-only", "--no-state", "--quiet"])
    assert cli.returncode == 0, cli.stderr
    expected = sorted(json.loads(line)["eventID"] for line in cli.stdout.splitlines())
    assert expected, "the filter must keep something for the test to mean anything"
    table = trailmill.scan(INVICTUS, event_name="Describe*", errors_only=True).read_all()
    assert sorted(table.column("event_id").to_pylist()) == expected
    assert set(table.column("error_code").to_pylist()) - {None}
    assert all(n.startswith("Describe") for n in table.column("event_name").to_pylist())


def test_selection_by_account_and_time_uses_the_keys():
    assert trailmill.scan(INVICTUS, account="218007301253").read_all().num_rows == 2900
    assert trailmill.scan(INVICTUS, account="000000000000").read_all().num_rows == 0
    assert trailmill.scan(TRAIL, start="2024-01-01T02:00:00Z").read_all().num_rows < 400


def test_polars_duckdb_and_pandas_consume_a_scan():
    import duckdb
    import polars as pl

    df = pl.from_arrow(trailmill.scan(INVICTUS))
    assert df.height == 2900
    by_polars = dict(df.group_by("event_name").len().iter_rows())
    reader = trailmill.scan(INVICTUS)
    by_duckdb = dict(duckdb.sql("SELECT event_name, count(*) FROM reader GROUP BY 1").fetchall())
    assert by_duckdb == by_polars and sum(by_polars.values()) == 2900
    pdf = trailmill.scan(INVICTUS).read_pandas()
    assert len(pdf) == 2900 and pdf["event_time"].dt.tz is not None


def test_arrow_buffers_are_shared_not_copied_into_polars():
    import polars as pl

    table = trailmill.scan(INVICTUS, json_columns=False, raw_column=False).read_all()
    df = pl.from_arrow(table)
    # Polars adopts Arrow buffers: the same values, no Python object per row.
    assert df.height == table.num_rows
    assert df["event_id"].to_list() == table.column("event_id").to_pylist()


def test_a_bad_file_is_reported_with_its_name_and_the_rest_is_read():
    errors = []
    table = trailmill.scan(BAD, on_error=errors.append).read_all()
    names = sorted(e.path.rsplit("_", 1)[1] for e in errors)
    assert "truncatedgzip001.json.gz" in names and "invalidjson00001.json.gz" in names
    assert all(isinstance(e, trailmill.DecodeError) and e.reason for e in errors)
    assert "good000000000001.json.gz" not in names
    assert table.num_rows > 0, "the good file's events still arrive"
    with pytest.warns(trailmill.DecodeWarning) as warned:
        trailmill.scan(BAD).read_all()
    assert len(warned) == len(errors), "one warning per bad file, none lost"
    assert any("truncatedgzip" in str(w.message) for w in warned)


def test_strict_raises_decode_error_naming_the_file():
    with pytest.raises(trailmill.DecodeError) as caught:
        trailmill.scan(BAD, strict=True, threads=1).read_all()
    assert caught.value.path.startswith(str(BAD))
    assert str(caught.value).startswith(caught.value.path + ": ")
    assert isinstance(caught.value, trailmill.Error)


def test_a_missing_source_is_a_source_error():
    with pytest.raises(trailmill.SourceError, match="no-such-dir"):
        trailmill.scan("/no-such-dir")
    with pytest.raises(ValueError, match="start"):
        trailmill.scan(INVICTUS, start="yesterday")


def test_an_early_stop_ends_the_run(tmp_path):
    # More files than one batch holds: the reader is dropped half-way.
    reader = trailmill.scan(INVICTUS, batch_size=10, threads=2)
    first = reader.read_next_batch()
    assert first.num_rows <= 10
    reader.close()
    # A new scan after it works as usual.
    assert trailmill.scan(INVICTUS).read_all().num_rows == 2900


def test_progress_reports_rows_so_far():
    seen = []
    trailmill.scan(INVICTUS, batch_size=500, progress=seen.append).read_all()
    assert seen == sorted(seen) and seen[-1] == 2900


def test_events_yield_dicts_or_exact_bytes():
    records = list(trailmill.events(STRATUS))
    assert len(records) == 310 and all(isinstance(r, dict) and "eventID" in r for r in records)
    raw = sorted(trailmill.events(STRATUS, raw=True))
    assert raw == sorted(r.encode() for r in source_records(STRATUS))
    some = list(trailmill.events(INVICTUS, event_source="iam.amazonaws.com"))
    assert some and all(r["eventSource"] == "iam.amazonaws.com" for r in some)


def test_gzip_logs_of_a_bucket_mirror(tmp_path):
    # The bundled trail: gzip files in the AWSLogs/ layout, 16 files.
    table = trailmill.scan(TRAIL).read_all()
    assert table.num_rows == 400
    files = set(table.column("source_object").to_pylist())
    assert len(files) == 16 and all(f.endswith(".json.gz") for f in files)
    one = sorted(files)[0]
    with gzip.open(one, "rt") as f:
        records = json.load(f)["Records"]
    mine = table.filter(pa.compute.equal(table.column("source_object"), one))
    assert sorted(mine.column("event_id").to_pylist()) == sorted(r["eventID"] for r in records)


def test_ctrl_c_interrupts_a_long_scan_at_once():
    import os
    import signal
    import threading
    import time
    import warnings

    # A long scan that yields nothing: the same folder listed many times,
    # with a filter no event matches, so the reader waits in Rust throughout.
    def long_scan(copies):
        return trailmill.scan([INVICTUS] * copies, event_name="NoSuchEvent", threads=1)

    started = time.perf_counter()
    assert long_scan(50).read_all().num_rows == 0
    per_50 = time.perf_counter() - started
    # Python only turns SIGINT into KeyboardInterrupt when it starts with
    # SIGINT at its default, as in a terminal. A test run in the background
    # of a non-interactive shell (`scripts/test &`) inherits SIGINT ignored,
    # and then this test saw no interrupt and ran the whole scan: install
    # Python's handler for the test, whatever the test run inherited.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    timer = threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT))
    # Warnings are kept: if files failed fast, the failure below says so.
    with warnings.catch_warnings(record=True) as warned:
        warnings.simplefilter("always")
        started = time.perf_counter()
        timer.start()
        try:
            long_scan(4000).read_all()  # 80 times the run above
        except KeyboardInterrupt:
            pass
        else:
            timer.join()  # so that the signal cannot reach a later test
            pytest.fail(
                f"no KeyboardInterrupt: the scan ended after {time.perf_counter() - started:.2f} s "
                f"(50 copies took {per_50:.2f} s), with warnings {[str(w.message) for w in warned][:3]}"
            )
        finally:
            signal.signal(signal.SIGINT, previous)
    # Stopped long before its end, which the signal alone would wait for.
    assert time.perf_counter() - started < 5 * per_50 + 1


def test_a_file_read_with_a_warning_delivers_its_events_and_warns(tmp_path):
    # The file is read, both records arrive, and the warning is not lost.
    path = write_odd_trail(tmp_path)
    with pytest.warns(trailmill.ReadWarning) as warned:
        table = trailmill.scan(tmp_path).read_all()
    assert sorted(table.column("raw").to_pylist()) == sorted([ODD_RECORD, GOOD_RECORD])
    messages = [str(w.message) for w in warned]
    assert len(messages) == 1 and messages[0].startswith(str(path) + ": record 0 has none of")


def test_shards_split_a_source_into_disjoint_parts_that_cover_it():
    whole = sorted(trailmill.scan(TRAIL).read_all().column("event_id").to_pylist())
    parts = [trailmill.scan(TRAIL, shard=(i, 3)).read_all() for i in range(3)]
    ids = [sorted(p.column("event_id").to_pylist()) for p in parts]
    assert sorted(sum(ids, [])) == whole, "every event in exactly one shard"
    files = [set(p.column("source_object").to_pylist()) for p in parts]
    assert all(files) and not (files[0] & files[1] or files[0] & files[2] or files[1] & files[2])
    assert trailmill.scan(TRAIL, shard="1/3").read_all().num_rows == parts[1].num_rows
    with pytest.raises(ValueError, match="shard"):
        trailmill.scan(TRAIL, shard="3/3")
