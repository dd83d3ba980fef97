"""The distributed pattern: PySpark (local mode, the machine's Java) spreads
a list of log objects over tasks, and each task reads its share with
trailmill.scan inside mapInArrow."""

from __future__ import annotations

import os
import shutil
import sys

import pyarrow.dataset as ds
import pytest

import trailmill
from conftest import INVICTUS, source_records


@pytest.fixture(scope="module")
def spark():
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        pytest.fail("PySpark needs Java: install a JDK 17 (java on PATH)")
    from pyspark.sql import SparkSession

    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    session = (
        SparkSession.builder.master("local[2]")
        .appName("trailmill-test")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.driver.memory", "1g")
        .getOrCreate()
    )
    yield session
    session.stop()


def test_map_in_arrow_reads_every_object_once_and_writes_parquet(spark, tmp_path):
    from pyspark.sql.pandas.types import from_arrow_schema

    # Defined here so that Spark pickles it by value: the executors' Python
    # has the trailmill package, not this test module.
    def read_objects(batches):
        """Each batch of object paths becomes those objects' events."""
        import trailmill

        for batch in batches:
            paths = batch.column("path").to_pylist()
            if paths:
                yield from trailmill.scan(paths, threads=1, strict=True)

    paths = sorted(str(p) for p in INVICTUS.glob("*.json"))
    assert len(paths) == 55
    objects = spark.createDataFrame([(p,) for p in paths], "path string").repartition(6)
    schema = from_arrow_schema(trailmill.scan(paths[:1]).schema)
    events = objects.mapInArrow(read_objects, schema)
    out = tmp_path / "events"
    events.write.parquet(str(out))
    table = ds.dataset(out, format="parquet").to_table()
    assert table.num_rows == 2900
    assert len(set(table.column("event_id").to_pylist())) == 2900
    assert sorted(table.column("raw").to_pylist()) == source_records(INVICTUS)
