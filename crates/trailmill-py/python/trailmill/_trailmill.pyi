"""Type stubs for the native module; use the functions of :mod:`trailmill`."""

from typing import Any

__version__: str

class Scan:
    def schema_capsule(self) -> object: ...
    def next_item(self) -> tuple[Any, ...] | None: ...
    def summary(self) -> dict[str, Any] | None: ...
    def close(self) -> None: ...

def scan(
    sources: list[str],
    *,
    accounts: list[str],
    regions: list[str],
    org_ids: list[str],
    prefix: str | None,
    start: str | None,
    end: str | None,
    include_insights: bool,
    shard: str | None,
    event_sources: list[str],
    event_names: list[str],
    event_accounts: list[str],
    event_regions: list[str],
    user_arns: list[str],
    error_codes: list[str],
    errors_only: bool,
    read_only: bool | None,
    event_categories: list[str],
    event_time_start: str | None,
    event_time_end: str | None,
    threads: int | None,
    batch_rows: int,
    json_columns: bool,
    raw_column: bool,
) -> Scan: ...
def validate(
    source: str,
    *,
    trail_arn: str | None,
    all: bool,
    start_time: str | None,
    end_time: str | None,
    public_keys: str | None,
    bucket: str | None,
    s3_prefix: str | None,
    org_id: str | None,
    account_id: str | None,
    region: str | None,
    expect_until: str | None,
) -> tuple[list[str], list[str], int]: ...
def process(args: list[str]) -> tuple[bool, dict[str, Any]]: ...
