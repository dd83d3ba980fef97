#!/usr/bin/env python3
"""Writes fixtures/bad/: one CloudTrail-named log file per kind of bad input,
plus one good file, so a run over the directory shows each error named by file
while the good file is still processed. Deterministic; run from the repo root."""
import gzip, json, os, io

root = "fixtures/bad/AWSLogs/111122223333/CloudTrail/us-east-1/2024/01/01"
os.makedirs(root, exist_ok=True)

def name(unique):
    return f"{root}/111122223333_CloudTrail_us-east-1_20240101T0000Z_{unique}.json.gz"

def gz(data: bytes) -> bytes:
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", compresslevel=6, mtime=0) as f:
        f.write(data)
    return buf.getvalue()

def event(i, **extra):
    e = {"eventVersion": "1.08", "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/alice"},
         "eventTime": f"2024-01-01T00:00:0{i}Z", "eventSource": "s3.amazonaws.com", "eventName": "GetObject",
         "awsRegion": "us-east-1", "sourceIPAddress": "192.0.2.1", "eventID": f"00000000-0000-4000-8000-00000000000{i}",
         "readOnly": True, "recipientAccountId": "111122223333"}
    e.update(extra)
    return e

files = {
    "good000000000001": gz(json.dumps({"Records": [event(1), event(2), event(3)]}).encode()),
    "truncatedgzip001": gz(json.dumps({"Records": [event(4)]}).encode())[:-20],
    "invalidjson00001": gz(b'{"Records":[{"eventVersion":"1.08","eventTime":'),
    "digestinsteadof1": gz(json.dumps({"awsAccountId": "111122223333", "digestStartTime": "2024-01-01T00:00:00Z",
                                        "digestEndTime": "2024-01-01T01:00:00Z", "logFiles": []}).encode()),
    "emptyfile0000001": b"",
    "notcloudtrail001": gz(json.dumps({"hello": "world", "items": [1, 2, 3]}).encode()),
    # 80 MiB in one field: over the default 64 MiB per-record limit, in a 80 KiB file.
    "hugefield0000001": gz(json.dumps({"Records": [event(5, requestParameters={"blob": "A" * (80 << 20)})]}).encode()),
}
for unique, data in files.items():
    with open(name(unique), "wb") as f:
        f.write(data)
