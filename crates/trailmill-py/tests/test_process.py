"""trailmill.process is the CLI's process: sinks, state and resume."""

from __future__ import annotations

import sqlite3

import pytest

import trailmill
from conftest import BAD, INVICTUS, write_odd_trail


def test_process_loads_sqlite_and_resumes_without_redoing(tmp_path):
    db = tmp_path / "events.db"
    first = trailmill.process(INVICTUS, sinks=[f"sqlite:{db}"])
    assert first.ok and first.files_ok == 55 and first.events_out == 2900
    assert first.sinks[f"sqlite:{db}"]["events_written"] == 2900
    with sqlite3.connect(db) as c:
        assert c.execute("SELECT count(DISTINCT event_id) FROM events").fetchone() == (2900,)
    again = trailmill.process(INVICTUS, sinks=[f"sqlite:{db}"])
    assert again.ok and again.files_ok == 0 and again.events_out == 0, "the state skips what is done"
    redo = trailmill.process(INVICTUS, sinks=[f"sqlite:{db}"], restart=True)
    assert redo.files_ok == 55 and redo.sinks[f"sqlite:{db}"]["duplicates"] == 2900


def test_process_filters_and_parquet(tmp_path):
    lake = tmp_path / "lake"
    s = trailmill.process(INVICTUS, sinks=[f"parquet:{lake}"], event_source="iam.amazonaws.com", no_state=True)
    assert s.ok and 0 < s.events_out < 2900
    assert list(lake.rglob("*.parquet"))


def test_bad_files_fail_the_run_but_not_the_call(tmp_path):
    s = trailmill.process(BAD, sinks=[f"sqlite:{tmp_path / 'bad.db'}"])
    assert not s.ok and s.files_failed > 0 and s.files_ok > 0


def test_a_sink_that_cannot_open_raises(tmp_path):
    with pytest.raises(trailmill.Error, match="nope"):
        trailmill.process(INVICTUS, sinks=["nope:x"])


def test_warnings_of_a_run_reach_stderr(tmp_path, capfd):
    write_odd_trail(tmp_path / "trail")
    s = trailmill.process(tmp_path / "trail", sinks=[f"sqlite:{tmp_path / 'odd.db'}"])
    assert s.ok and s.events_out == 2
    err = capfd.readouterr().err
    assert "oddfirstrecord1" in err and "record 0 has none of" in err, err
