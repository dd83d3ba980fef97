"""trailmill: AWS CloudTrail logs at the speed of the hardware, from Python.

- :func:`scan` reads log files (local paths or ``s3://`` URLs) on every
  core and streams their events as Apache Arrow record batches, with the
  columns of trailmill's Parquet lake: hand the reader to pyarrow, Polars,
  DuckDB, pandas or Spark without a copy.
- :func:`events` yields one ``dict`` (or the exact ``bytes``) per event, for
  small scripts.
- :func:`validate` proves with CloudTrail's digest files that no log file
  was changed or deleted, as ``aws cloudtrail validate-logs`` does.
- :func:`process` runs ``trailmill process``: the same sinks (SQLite,
  Parquet, PostgreSQL, Iceberg, JSON Lines), state and resume as the CLI.

The work runs in Rust with the GIL released; Ctrl-C interrupts it.
"""

from __future__ import annotations

import datetime as _dt
import json as _json
import os as _os
import warnings as _warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Sequence, Union

import pyarrow as _pa

from . import _trailmill
from ._errors import DecodeError, DecodeWarning, Error, ReadWarning, SourceError, ValidationError

__version__: str = _trailmill.__version__

__all__ = [
    "scan",
    "events",
    "validate",
    "process",
    "Report",
    "Verdict",
    "Summary",
    "Error",
    "DecodeError",
    "SourceError",
    "ValidationError",
    "DecodeWarning",
    "ReadWarning",
]

#: A source: a path, an ``s3://BUCKET/PREFIX`` URL, or a list of either
#: (local paths and URLs cannot be mixed in one call).
Source = Union[str, "_os.PathLike[str]", Sequence[Union[str, "_os.PathLike[str]"]]]
#: A time: a ``datetime`` (naive ones are UTC), Unix seconds as ``int``, or
#: text in any form the CLI takes (``2024-01-01``, ``20240101``,
#: ``2024-01-01T10:00:00Z``, ``@1704067200``).
Time = Union[_dt.datetime, _dt.date, int, str]


def _sources(source: Source) -> list[str]:
    if isinstance(source, (str, _os.PathLike)):
        source = [source]
    return [_os.fspath(s) for s in source]


def _time(value: Time | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=_dt.timezone.utc)
        return value.isoformat()
    if isinstance(value, _dt.date):
        return value.isoformat()
    if isinstance(value, bool):
        raise TypeError("a time cannot be a bool")
    if isinstance(value, int):
        return f"@{value}"
    return str(value)


def _shard(value: str | tuple[int, int] | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    index, count = value
    return f"{index}/{count}"


def _list(value: str | Iterable[str] | None) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return list(value)


def scan(
    source: Source,
    *,
    start: Time | None = None,
    end: Time | None = None,
    account: str | Iterable[str] | None = None,
    region: str | Iterable[str] | None = None,
    org_id: str | Iterable[str] | None = None,
    prefix: str | None = None,
    include_insights: bool = False,
    shard: str | tuple[int, int] | None = None,
    event_source: str | Iterable[str] | None = None,
    event_name: str | Iterable[str] | None = None,
    event_account: str | Iterable[str] | None = None,
    event_region: str | Iterable[str] | None = None,
    user_arn: str | Iterable[str] | None = None,
    error_code: str | Iterable[str] | None = None,
    errors_only: bool = False,
    read_only: bool | None = None,
    event_category: str | Iterable[str] | None = None,
    event_time_start: Time | None = None,
    event_time_end: Time | None = None,
    threads: int | None = None,
    batch_size: int = 8192,
    json_columns: bool = True,
    raw_column: bool = True,
    strict: bool = False,
    on_error: Callable[[DecodeError], None] | None = None,
    progress: Callable[[int], None] | None = None,
) -> _pa.RecordBatchReader:
    """Reads CloudTrail log files and streams their events as Arrow batches.

    ``source`` is a directory (a bucket mirror or any tree of log files), a
    file, an ``s3://BUCKET/PREFIX`` URL (credentials, region and endpoint
    come from the standard AWS configuration), or a list of them.

    Files are chosen by key before any byte is read: ``start``/``end`` (the
    key's delivery time), ``account``, ``region``, ``org_id``, ``prefix``;
    CloudTrail Insights files only with ``include_insights``; ``shard``
    (``"I/N"`` or ``(I, N)``) keeps the files of shard I of N, by a stable
    hash of the key, as the CLI's ``--shard`` does, so that N tasks scanning
    the same source with shards 0 to N-1 read each file exactly once without
    listing it for one another. Events are then filtered by field: ``event_source``, ``event_name`` (globs such as
    ``"Describe*"``), ``event_account``, ``event_region``, ``user_arn``
    (globs), ``error_code``, ``errors_only``, ``read_only`` (``True`` for
    reads, ``False`` for writes), ``event_category`` and
    ``event_time_start``/``event_time_end``. A list means any of its values;
    different filters must all match.

    The columns are those of trailmill's Parquet lake: ``event_id``,
    ``event_time`` (UTC microseconds), the typed top-level and identity
    fields, the free-form objects as JSON text (``json_columns``),
    ``source_object`` (the file) and ``raw`` (each record's exact text,
    ``raw_column``). Batches hold at most ``batch_size`` rows; files are read
    on ``threads`` threads (default: every core), and memory stays bounded
    however large the source: a batch waits until the previous ones are
    consumed.

    A file that cannot be read does not stop the scan: it is reported as a
    :class:`DecodeError` (naming the file and the reason) to ``on_error``,
    or as a :class:`DecodeWarning` when there is no ``on_error``. With
    ``strict=True`` the first one is raised instead, and the scan stops.
    Something worth telling about a file that was read (a record without
    CloudTrail's core fields, say) is issued as a :class:`ReadWarning`.
    ``progress``, when given, is called after each batch with the number of
    rows so far.

    Raises :class:`SourceError` when a source does not exist or cannot be
    reached, and ``ValueError`` for bad arguments.
    """
    native = _trailmill.scan(
        _sources(source),
        accounts=_list(account),
        regions=_list(region),
        org_ids=_list(org_id),
        prefix=prefix,
        start=_time(start),
        end=_time(end),
        include_insights=include_insights,
        shard=_shard(shard),
        event_sources=_list(event_source),
        event_names=_list(event_name),
        event_accounts=_list(event_account),
        event_regions=_list(event_region),
        user_arns=_list(user_arn),
        error_codes=_list(error_code),
        errors_only=errors_only,
        read_only=read_only,
        event_categories=_list(event_category),
        event_time_start=_time(event_time_start),
        event_time_end=_time(event_time_end),
        threads=threads,
        batch_rows=batch_size,
        json_columns=json_columns,
        raw_column=raw_column,
    )
    schema = _pa.Schema._import_from_c_capsule(native.schema_capsule())
    batches = _batches(native, strict, on_error, progress)
    return _pa.RecordBatchReader.from_batches(schema, batches)


def _batches(
    native: Any,
    strict: bool,
    on_error: Callable[[DecodeError], None] | None,
    progress: Callable[[int], None] | None,
) -> Iterator[_pa.RecordBatch]:
    rows = 0
    try:
        while True:
            item = native.next_item()
            if item is None:
                return
            if item[0] == "batch":
                batch = _pa.RecordBatch._import_from_c_capsule(item[1], item[2])
                rows += batch.num_rows
                if progress is not None:
                    progress(rows)
                yield batch
                continue
            _, path, kind, reason = item
            if kind == "warning":
                _warnings.warn(f"{path}: {reason}", ReadWarning, stacklevel=2)
                continue
            error = DecodeError(path, reason, kind)
            if strict:
                raise error
            if on_error is not None:
                on_error(error)
            else:
                _warnings.warn(str(error), DecodeWarning, stacklevel=2)
    finally:
        # Also when the consumer stops early, or on an exception: stop the
        # run and wait for its threads.
        native.close()


def events(
    source: Source, *, raw: bool = False, **filters: Any
) -> Iterator[dict[str, Any] | bytes]:
    """Yields each event of ``source`` as a ``dict`` (parsed with
    :mod:`json`), or with ``raw=True`` as the record's exact ``bytes``.

    Takes the arguments of :func:`scan` (selection, filters, ``strict``,
    ``on_error``, ``threads``). Events of different files may interleave;
    the events of one file keep their order.
    """
    reader = scan(source, json_columns=False, **filters)
    for batch in reader:
        for text in batch.column("raw").to_pylist():
            yield text.encode() if raw else _json.loads(text)


@dataclass(frozen=True)
class Verdict:
    """One file's (or period's, or chain's) verdict."""

    #: ``digest``, ``backfill_digest``, ``log``, ``period``,
    #: ``backfill_period`` or ``chain``.
    kind: str
    #: ``valid``, ``invalid`` or ``gap``.
    verdict: str
    #: The object's key (``None`` for periods).
    key: str | None
    #: ``s3://bucket/key`` (``None`` for periods).
    uri: str | None
    #: The bucket (``None`` for periods).
    bucket: str | None
    #: For invalid verdicts: a stable code such as ``not_found``,
    #: ``hash_mismatch`` or ``signature_failed``.
    reason: str | None
    #: For invalid verdicts: what is wrong, in words.
    message: str | None
    #: The trail's ARN.
    trail: str | None
    #: The period a digest covers, or a gap's (ISO text).
    start: str | None = None
    end: str | None = None

    @property
    def ok(self) -> bool:
        """True unless the verdict is ``invalid``."""
        return self.verdict != "invalid"


@dataclass(frozen=True)
class Report:
    """What :func:`validate` found."""

    #: Every verdict, in the CLI's order.
    verdicts: list[Verdict]
    #: Each trail (account, region) with its counts.
    trails: list[dict[str, Any]]
    #: ``aws cloudtrail validate-logs``'s exit code: 0 valid, 1 not.
    exit_code: int
    #: The counts summed over the trails.
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when every digest and log file is valid."""
        return self.exit_code == 0

    @property
    def problems(self) -> list[Verdict]:
        """The invalid verdicts."""
        return [v for v in self.verdicts if not v.ok]

    def to_arrow(self) -> _pa.Table:
        """The verdicts as a pyarrow Table (one row per verdict)."""
        names = [f.name for f in Verdict.__dataclass_fields__.values()]
        return _pa.Table.from_pylist(
            [{n: getattr(v, n) for n in names} for v in self.verdicts],
            schema=_pa.schema([(n, _pa.string()) for n in names]),
        )


_COUNTS = (
    "valid_digests",
    "invalid_digests",
    "valid_backfill_digests",
    "invalid_backfill_digests",
    "valid_logs",
    "invalid_logs",
    "unattested_logs",
    "gaps",
    "chain_problems",
)


def validate(
    source: str | _os.PathLike[str],
    *,
    start_time: Time,
    end_time: Time | None = None,
    trail_arn: str | None = None,
    all: bool = False,
    public_keys: str | _os.PathLike[str] | None = None,
    bucket: str | None = None,
    s3_prefix: str | None = None,
    org_id: str | None = None,
    account_id: str | None = None,
    region: str | None = None,
    expect_until: Time | None = None,
) -> Report:
    """Validates CloudTrail's digest chains, their signatures and the log
    files' hashes, like ``aws cloudtrail validate-logs``.

    ``source`` is a local mirror (a bucket root, as ``aws s3 sync`` makes
    it) or an ``s3://BUCKET[/PREFIX]`` URL. Name one trail with
    ``trail_arn``, or every trail found with ``all=True``; ``start_time`` is
    required, ``end_time`` defaults to now. Public keys come from
    ``public_keys`` (a file saved by ``trailmill keys fetch``), else from
    ``SOURCE/keys.json``. ``bucket``, ``s3_prefix``, ``org_id``,
    ``account_id`` and ``region`` narrow the search as the CLI's flags do;
    ``expect_until`` flags a chain that stops before that time.

    Returns a :class:`Report` with every verdict; ``report.ok`` is true when
    everything is valid. Raises :class:`ValidationError` when the validation
    cannot run.
    """
    if (trail_arn is None) == (not all):
        raise ValueError("give trail_arn=... or all=True (one of them)")
    verdicts, trails, exit_code = _trailmill.validate(
        _os.fspath(source),
        trail_arn=trail_arn,
        all=all,
        start_time=_time(start_time),
        end_time=_time(end_time),
        public_keys=None if public_keys is None else _os.fspath(public_keys),
        bucket=bucket,
        s3_prefix=s3_prefix,
        org_id=org_id,
        account_id=account_id,
        region=region,
        expect_until=_time(expect_until),
    )
    trails = [_json.loads(t) for t in trails]
    arns = {t["index"]: t["arn"] for t in trails}
    parsed = []
    for text in verdicts:
        v = _json.loads(text)
        parsed.append(
            Verdict(
                kind=v["file"],
                verdict=v["status"],
                key=v.get("key"),
                uri=v.get("uri"),
                bucket=v.get("bucket"),
                reason=v.get("problem"),
                message=v.get("message"),
                trail=arns.get(v["trail"]),
                start=v.get("start"),
                end=v.get("end"),
            )
        )
    counts = {k: sum(t[k] for t in trails) for k in _COUNTS}
    return Report(verdicts=parsed, trails=trails, exit_code=exit_code, counts=counts)


@dataclass(frozen=True)
class Summary:
    """What :func:`process` did."""

    #: True when every file and sink succeeded (the CLI's exit status 0).
    ok: bool
    files_ok: int
    files_failed: int
    events_in: int
    events_out: int
    bytes_read: int
    bytes_uncompressed: int
    seconds: float
    interrupted: bool
    #: Each sink's counts: ``events_received``, ``events_written``,
    #: ``duplicates``, ``bytes_written``.
    sinks: dict[str, dict[str, int]]
    #: Sinks that failed to finish: ``(sink, reason)``.
    sink_errors: list[tuple[str, str]]


def process(
    source: Source,
    *,
    sinks: Sequence[str] = ("jsonl:-",),
    state: str | _os.PathLike[str] | None = None,
    no_state: bool = False,
    restart: bool = False,
    threads: int | None = None,
    quiet: bool = True,
    args: Sequence[str] = (),
    **filters: Any,
) -> Summary:
    """Runs ``trailmill process``: reads ``source`` and delivers its events
    to every sink (``"sqlite:out.db"``, ``"parquet:lake/"``,
    ``"postgres://…"``, ``"iceberg:db.table"``, ``"jsonl:events.jsonl.gz"``),
    with the CLI's state: a run records which files are done, and the next
    run resumes after them (``restart=True`` starts over, ``state`` moves the
    state file, ``no_state`` runs without one).

    ``filters`` are the selection and event filters of :func:`scan`
    (``start``, ``account``, ``event_name``, …); ``args`` passes any other
    CLI flag as is (``["--iceberg-catalog", "sqlite:cat.db"]``). The CLI's
    summary goes to stderr unless ``quiet``. Ctrl-C stops the run as
    SIGINT stops the command: the files in flight finish and are recorded,
    then ``KeyboardInterrupt`` is raised. Raises :class:`Error` when the
    run cannot start (a sink or state that cannot be opened).
    """
    argv = _sources(source)
    for sink in sinks:
        argv += ["--sink", sink]
    if state is not None:
        argv += ["--state", _os.fspath(state)]
    if no_state:
        argv.append("--no-state")
    if restart:
        argv.append("--restart")
    if threads is not None:
        argv += ["--threads", str(threads)]
    if quiet:
        argv.append("--quiet")
    argv += _filter_flags(filters)
    argv += list(args)
    ok, summary = _trailmill.process(argv)
    return Summary(ok=ok, **summary)


_LIST_FLAGS = {
    "account": "--account",
    "region": "--region",
    "org_id": "--org-id",
    "event_source": "--event-source",
    "event_name": "--event-name",
    "event_account": "--event-account",
    "event_region": "--event-region",
    "user_arn": "--user-arn",
    "error_code": "--error-code",
    "event_category": "--event-category",
}
_TIME_FLAGS = {
    "start": "--start",
    "end": "--end",
    "event_time_start": "--event-time-start",
    "event_time_end": "--event-time-end",
}


def _filter_flags(filters: dict[str, Any]) -> list[str]:
    argv: list[str] = []
    for name, value in filters.items():
        if value is None or value is False:
            continue
        if name in _LIST_FLAGS:
            for v in _list(value):
                argv += [_LIST_FLAGS[name], v]
        elif name in _TIME_FLAGS:
            argv += [_TIME_FLAGS[name], _time(value)]
        elif name == "prefix":
            argv += ["--prefix", value]
        elif name == "shard":
            argv += ["--shard", _shard(value)]
        elif name in ("include_insights", "errors_only") and value is True:
            argv.append("--" + name.replace("_", "-"))
        elif name == "read_only":
            argv.append("--read-only" if value else "--writes-only")
        else:
            raise TypeError(f"process() got an unexpected keyword argument {name!r}")
    return argv
