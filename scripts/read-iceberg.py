#!/usr/bin/env python3
"""Independent reader of an Apache Iceberg table, for the tests of the Iceberg
sink: it reads what the Rust writer committed through pyiceberg (its own
catalogs, its own metadata parser, pyarrow's S3 and local file systems), not
through any code of this project. Run it with the python that
scripts/setup-iceberg-reader.sh prints.

Usage:
  read-iceberg.py --catalog-uri URI --warehouse W --table NS.TABLE
                  [--catalog-name NAME] [--property K=V ...] [--columns a,b,...]

--catalog-uri:
  sqlite:PATH               pyiceberg SqlCatalog on sqlite:///PATH (PATH must
                            exist: the reader never creates a catalog)
  sqlite:///PATH            the same, given as an SQLAlchemy URL
  postgres://... or postgresql://...
                            SqlCatalog on postgresql+psycopg2://...
  glue                      pyiceberg GlueCatalog (database = NS)
  arn:aws:s3tables:REGION:ACCOUNT:bucket/NAME
                            an Amazon S3 Tables table bucket: boto3's s3tables
                            client gives the table's metadata location
                            (GetTableMetadataLocation), which pyiceberg's
                            StaticTable reads (pyiceberg has no S3 Tables
                            catalog of its own). Its endpoint is the
                            s3tables.endpoint property, else s3.endpoint.
  http://... or https://... pyiceberg RestCatalog on that Iceberg REST
                            catalog server; give its credential as
                            --property token=T (or credential=ID:SECRET),
                            and for a server whose certificate no system
                            root signs, --property ssl.cabundle=PEM.
--catalog-name: the SQL catalog's name, the catalog_name column of its
  iceberg_tables and iceberg_namespace_properties tables (default trailmill;
  unused by Glue).
--warehouse: the catalog's warehouse property (a local path, file://...,
  or s3://bucket/prefix); reading a table only needs the metadata location
  the catalog stores, but it is passed through. An S3 Tables bucket has
  none (the service places each table): give ''. For a REST catalog it is
  the server's warehouse name or location; '' leaves it to the server.
--table: NS.TABLE; the last dot separates the table's name from its
  namespace (a SQL catalog's namespace may have dots, Glue's may not).
--property K=V: passed to the catalog, which passes them to its FileIO
  (s3.endpoint, s3.region, s3.access-key-id, s3.secret-access-key,
  glue.endpoint, glue.region, client.region, ...). Additionally:
  - s3.path-style-access=true|false (the Iceberg Java/Rust name, which
    pyiceberg ignores) sets pyiceberg's s3.force-virtual-addressing to its
    negation unless that one is given. pyarrow's S3 file system already uses
    path-style requests when s3.endpoint is set, so it is optional on moto.
  - With s3.endpoint and no s3.region or client.region, s3.region defaults
    to us-east-1: without a region pyiceberg asks AWS for the bucket's region
    over the network.
  - For glue, glue.region, glue.access-key-id, glue.secret-access-key and
    glue.session-token default to client.* and then to s3.* (so the
    properties the Rust side gives its FileIO suffice for moto).
  - AWS_EC2_METADATA_DISABLED=true unless set: no credential look-up on the
    EC2 instance metadata service, by boto3 or by pyarrow's S3.
--columns: the columns to print under "values", each sorted by event_id.

Prints one JSON object on stdout:
  {"rows": N, "event_ids": [sorted event_id values], "distinct_event_ids": N,
   "snapshots": [{"snapshot_id": ID, "parent_snapshot_id": ID or null,
                  "sequence_number": N, "timestamp_ms": MS,
                  "summary": {KEY: "VALUE", ...}}, ...],
   "current_snapshot_id": ID or null, "format_version": N,
   "location": TABLE LOCATION, "metadata_location": PATH or null,
   "data_files": [paths of the current snapshot's data files, sorted],
   "row_groups": {data file path: its number of Parquet row groups},
   "properties": {...}, "partition_spec": str(spec),
   "schema": [[name, type, required], ...],
   "values": {COLUMN: [values sorted by event_id]}}   (only with --columns)
Timestamps are ISO 8601 strings, dates and times too, decimals strings,
binary values hex. "event_ids" and "distinct_event_ids" are null when the
table has no event_id column (then "values" keep the scan's order).

Exit status: 0; 3 when the table (or its namespace, or the catalog's tables)
does not exist; 1 on any other error; 2 on a usage error. Messages go to
stderr.
"""
import argparse
import datetime
import decimal
import json
import os
import sys
import uuid

EXIT_MISSING = 3


def die(message, code=1):
    print(f"read-iceberg: {message}", file=sys.stderr)
    sys.exit(code)


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="read-iceberg.py", description="Reads an Iceberg table for the tests."
    )
    p.add_argument("--catalog-uri", required=True)
    p.add_argument("--warehouse", required=True)
    p.add_argument("--table", required=True, help="NS.TABLE")
    p.add_argument("--catalog-name", default="trailmill")
    p.add_argument("--property", action="append", default=[], metavar="K=V")
    p.add_argument("--columns", default="")
    args = p.parse_args(argv)
    props = {}
    for kv in args.property:
        if "=" not in kv:
            p.error(f"--property {kv!r} is not K=V")
        k, v = kv.split("=", 1)
        props[k] = v
    args.properties = props
    args.column_list = [c for c in args.columns.split(",") if c]
    ns, _, name = args.table.rpartition(".")
    if not ns or not name or "" in ns.split("."):
        p.error(f"--table {args.table!r} is not NS.TABLE")
    args.namespace, args.table_name = ns, name
    return args


def catalog_properties(args):
    """The properties given, with the translations the docstring lists."""
    props = dict(args.properties)
    props["warehouse"] = args.warehouse
    psa = props.pop("s3.path-style-access", None)
    if psa is not None and "s3.force-virtual-addressing" not in props:
        path_style = psa.strip().lower() in ("true", "1", "yes", "on")
        props["s3.force-virtual-addressing"] = "false" if path_style else "true"
    if "s3.endpoint" in props and "s3.region" not in props and "client.region" not in props:
        props["s3.region"] = "us-east-1"
    return props


def open_catalog(args):
    uri = args.catalog_uri
    props = catalog_properties(args)
    if uri == "glue":
        from pyiceberg.catalog.glue import GlueCatalog

        for suffix in ("region", "access-key-id", "secret-access-key", "session-token"):
            key = f"glue.{suffix}"
            if key not in props:
                for src in (f"client.{suffix}", f"s3.{suffix}"):
                    if src in props:
                        props[key] = props[src]
                        break
        return GlueCatalog(args.catalog_name, **props)

    if uri.startswith("http://") or uri.startswith("https://"):
        from pyiceberg.catalog.rest import RestCatalog

        props["uri"] = uri
        if not props.get("warehouse"):
            props.pop("warehouse", None)
        cabundle = props.pop("ssl.cabundle", None)
        if cabundle is not None:
            props["ssl"] = {"cabundle": cabundle}
            # requests lets REQUESTS_CA_BUNDLE (or CURL_CA_BUNDLE), where set,
            # win over the session's own bundle, which pyiceberg sets.
            os.environ["REQUESTS_CA_BUNDLE"] = cabundle
            os.environ.pop("CURL_CA_BUNDLE", None)
        return RestCatalog(args.catalog_name, **props)

    if uri.startswith("sqlite:"):
        rest = uri[len("sqlite:"):]
        if rest.startswith("///"):
            url, path = uri, rest[3:]
        elif rest.startswith("//"):
            die(f"catalog URI {uri!r}: use sqlite:PATH or sqlite:///PATH", 2)
        else:
            url, path = f"sqlite:///{rest}", rest
        if path and path != ":memory:" and not os.path.exists(path):
            die(f"table {args.table} does not exist: no SQLite catalog at {path}", EXIT_MISSING)
    elif uri.startswith("postgres://") or uri.startswith("postgresql://"):
        url = "postgresql+psycopg2://" + uri.split("://", 1)[1]
    elif uri.startswith("postgresql+"):
        url = uri
    else:
        die(
            f"unknown catalog URI {uri!r} (sqlite:PATH, postgres://..., glue, an S3 Tables "
            "bucket ARN, or a REST catalog's http(s):// URI)",
            2,
        )

    from pyiceberg.catalog.sql import SqlCatalog

    props["uri"] = url
    # A reader: never create the catalog's tables in the writer's database.
    props.setdefault("init_catalog_tables", "false")
    return SqlCatalog(args.catalog_name, **props)


def is_table_bucket(uri):
    return uri.startswith("arn:") and ":s3tables:" in uri


def load_s3tables_table(args):
    """The table of an S3 Tables bucket, from its current metadata location."""
    import boto3
    from pyiceberg.table import StaticTable

    props = catalog_properties(args)
    region = args.catalog_uri.split(":")[3]
    client = boto3.client(
        "s3tables",
        endpoint_url=props.get("s3tables.endpoint", props.get("s3.endpoint")),
        region_name=region,
        aws_access_key_id=props.get("s3.access-key-id"),
        aws_secret_access_key=props.get("s3.secret-access-key"),
    )
    try:
        location = client.get_table_metadata_location(
            tableBucketARN=args.catalog_uri, namespace=args.namespace, name=args.table_name
        )["metadataLocation"]
    except client.exceptions.NotFoundException as e:
        die(f"table {args.table} does not exist in {args.catalog_uri}: {e}", EXIT_MISSING)
    return StaticTable.from_metadata(location, properties=props)


def load_table(catalog, args):
    from pyiceberg.exceptions import NoSuchNamespaceError, NoSuchTableError

    missing = (NoSuchTableError, NoSuchNamespaceError)
    try:
        from sqlalchemy.exc import OperationalError, ProgrammingError

        missing = missing + (OperationalError, ProgrammingError)
    except ImportError:
        pass
    ident = tuple(args.namespace.split(".")) + (args.table_name,)
    if args.catalog_uri == "glue":
        ident = (args.namespace, args.table_name)
    try:
        return catalog.load_table(ident)
    except missing as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        die(
            f"table {args.table} does not exist in catalog {args.catalog_name!r} "
            f"at {args.catalog_uri}: {type(e).__name__}: {first}",
            EXIT_MISSING,
        )


def to_json_value(v):
    """A JSON-able form of one value as pyarrow's to_pylist gives it."""
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if isinstance(v, (datetime.datetime, datetime.date, datetime.time)):
        return v.isoformat()
    if isinstance(v, datetime.timedelta):
        return str(v)
    if isinstance(v, decimal.Decimal):
        return str(v)
    if isinstance(v, uuid.UUID):
        return str(v)
    if isinstance(v, (bytes, bytearray, memoryview)):
        return bytes(v).hex()
    if isinstance(v, dict):
        return {str(k): to_json_value(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        # pyarrow gives maps as lists of (key, value) tuples.
        return [to_json_value(x) for x in v]
    if hasattr(v, "isoformat"):  # pandas.Timestamp, should pandas be there
        return v.isoformat()
    return str(v)


def main(argv):
    args = parse_args(argv)
    # Neither boto3 (Glue) nor pyarrow's AWS SDK (S3) may look for
    # credentials on the EC2 instance metadata service: a test has no network.
    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    if is_table_bucket(args.catalog_uri):
        table = load_s3tables_table(args)
    else:
        table = load_table(open_catalog(args), args)

    import pyarrow as pa
    import pyarrow.compute as pc

    schema = table.schema()
    top = [f.name for f in schema.fields]
    for c in args.column_list:
        if c not in top:
            die(f"--columns: table {args.table} has no column {c!r} (it has {', '.join(top)})")
    has_event_id = "event_id" in top
    wanted = (["event_id"] if has_event_id else []) + [
        c for c in args.column_list if c != "event_id"
    ]
    scan = table.scan(selected_fields=tuple(wanted) if wanted else ("*",))
    data = scan.to_arrow()
    rows = data.num_rows

    out = {"rows": rows}
    order = None
    if has_event_id:
        ids = data.column("event_id")
        order = pc.sort_indices(
            pa.table({"event_id": ids}), sort_keys=[("event_id", "ascending")]
        )
        sorted_ids = ids.take(order).to_pylist()
        out["event_ids"] = sorted_ids
        out["distinct_event_ids"] = len(set(sorted_ids))
    else:
        out["event_ids"] = None
        out["distinct_event_ids"] = None

    snaps = []
    for s in table.metadata.snapshots:
        summary = {}
        if s.summary is not None:
            summary["operation"] = str(s.summary.operation.value)
            summary.update({k: str(v) for k, v in s.summary.additional_properties.items()})
        snaps.append(
            {
                "snapshot_id": s.snapshot_id,
                "parent_snapshot_id": s.parent_snapshot_id,
                "sequence_number": s.sequence_number,
                "timestamp_ms": s.timestamp_ms,
                "summary": summary,
            }
        )
    out["snapshots"] = snaps
    out["current_snapshot_id"] = table.metadata.current_snapshot_id
    out["format_version"] = table.metadata.format_version
    out["location"] = table.metadata.location
    out["metadata_location"] = table.metadata_location
    out["data_files"] = sorted(t.file.file_path for t in table.scan().plan_files())
    # Each data file's Parquet row groups, read from its footer through the
    # table's own FileIO (local or S3).
    import pyarrow.parquet as pq

    row_groups = {}
    for path in out["data_files"]:
        with table.io.new_input(path).open() as f:
            row_groups[path] = pq.ParquetFile(f).metadata.num_row_groups
    out["row_groups"] = row_groups
    out["properties"] = {k: str(v) for k, v in table.properties.items()}
    out["partition_spec"] = str(table.spec())
    out["schema"] = [[f.name, str(f.field_type), bool(f.required)] for f in schema.fields]

    if args.column_list:
        values = {}
        for c in args.column_list:
            col = data.column(c)
            if order is not None:
                col = col.take(order)
            values[c] = [to_json_value(v) for v in col.to_pylist()]
        out["values"] = values

    json.dump(out, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
