"""Shared fixtures: the repository's data, the CLI binary (the reference
the package is checked against) and a moto server for s3:// sources."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
DATASETS = REPO / "fixtures" / "real"
INVICTUS = DATASETS / "invictus-ir" / "CloudTrail"
STRATUS = DATASETS / "stratus-red-team"
TRAIL = REPO / "fixtures" / "trail"
BAD = REPO / "fixtures" / "bad"


def source_records(root: Path) -> list[str]:
    """Each record's exact source text, cut out of every log file below
    `root` by an independent reader (the standard library's JSON decoder
    walking the `Records` array, or a bare array, by offsets)."""
    decoder = json.JSONDecoder()
    records = []
    for path in sorted(root.rglob("*.json")):
        text = path.read_text(encoding="utf-8")
        start = text.index("[", text.index('"Records"')) if '"Records"' in text[:200] else text.index("[")
        i = start + 1
        while True:
            while text[i] in " \t\r\n,":
                i += 1
            if text[i] == "]":
                break
            _, end = decoder.raw_decode(text, i)
            records.append(text[i:end])
            i = end
    return sorted(records)


@pytest.fixture(scope="session")
def trailmill_bin() -> Path:
    """The `trailmill` command the Rust tests built (TRAILMILL_BIN, else the
    debug build in CARGO_TARGET_DIR or target/)."""
    env = os.environ.get("TRAILMILL_BIN")
    if env:
        path = Path(env)
    else:
        target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
        path = target / "debug" / "trailmill"
    assert path.exists(), f"{path} is missing: build it (cargo build -p trailmill-cli) or set TRAILMILL_BIN"
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def moto(tmp_path_factory):
    """A moto server (scripts/moto-server.py, with the repository's pinned
    moto: TRAILMILL_MOTO_PYTHON) on 127.0.0.1 holding bucket `datasets`,
    with the invictus-ir files under their own relative keys. Yields the
    endpoint; the test process's AWS settings point at it."""
    python = os.environ.get("TRAILMILL_MOTO_PYTHON", str(REPO / ".venv" / "moto" / "bin" / "python"))
    assert Path(python).exists(), f"{python} is missing: run scripts/setup-moto.sh"
    setup = tmp_path_factory.mktemp("moto") / "setup.json"
    objects = [
        [str(p.relative_to(DATASETS)), str(p), {}]
        for p in sorted((DATASETS / "invictus-ir").rglob("*.json"))
    ]
    setup.write_text(
        json.dumps(
            {"account": "123456789012", "region": "us-east-1", "bucket": "datasets", "objects": objects, "trail": None}
        )
    )
    port = free_port()
    env = dict(os.environ, MOTO_ACCOUNT_ID="123456789012")
    server = subprocess.Popen(
        [python, str(REPO / "scripts" / "moto-server.py"), str(port), "--setup", str(setup)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert server.poll() is None, "moto exited"
            assert time.monotonic() < deadline, "moto did not start"
            time.sleep(0.1)
    endpoint = f"http://127.0.0.1:{port}"
    saved = {k: os.environ.get(k) for k in AWS_ENV}
    os.environ.update(
        AWS_ENDPOINT_URL=endpoint,
        AWS_ACCESS_KEY_ID="test",
        AWS_SECRET_ACCESS_KEY="test",
        AWS_REGION="us-east-1",
        AWS_CONFIG_FILE="/dev/null",
        AWS_SHARED_CREDENTIALS_FILE="/dev/null",
        AWS_EC2_METADATA_DISABLED="true",
    )
    os.environ.pop("AWS_PROFILE", None)
    os.environ.pop("AWS_ENDPOINT_URL_S3", None)
    yield endpoint
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    server.kill()
    server.wait()


AWS_ENV = (
    "AWS_ENDPOINT_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_REGION",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_EC2_METADATA_DISABLED",
    "AWS_PROFILE",
    "AWS_ENDPOINT_URL_S3",
)


@pytest.fixture
def trail_copy(tmp_path) -> Path:
    """A private copy of the bundled signed trail, to damage."""
    root = tmp_path / "trail"
    shutil.copytree(TRAIL, root)
    return root


#: A first record with none of CloudTrail's core fields (issue 16's file),
#: and a good record after it.
ODD_RECORD = '{"eventVersion1":"1.08","eventTime1":"2024-05-01T10:00:00Z","eventName1":"GetObject"}'
GOOD_RECORD = (
    '{"eventVersion":"1.08","eventTime":"2024-05-01T10:01:00Z","eventSource":"iam.amazonaws.com",'
    '"eventName":"ListUsers","awsRegion":"us-east-1","eventID":"aaaaaaaa-0000-4000-8000-000000000001"}'
)


def write_odd_trail(root: Path) -> Path:
    """A trail under `root` of one log file holding ODD_RECORD, then
    GOOD_RECORD; returns the file's path."""
    import gzip

    folder = root / "AWSLogs/111122223333/CloudTrail/us-east-1/2024/05/01"
    folder.mkdir(parents=True)
    path = folder / "111122223333_CloudTrail_us-east-1_20240501T1005Z_oddfirstrecord1.json.gz"
    with gzip.open(path, "wt") as f:
        f.write('{"Records":[' + ODD_RECORD + "," + GOOD_RECORD + "]}")
    return path


def run(cmd, **kw) -> subprocess.CompletedProcess:
    out = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    return out
