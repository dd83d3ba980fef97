#!/usr/bin/env python3
"""Runs a moto server (S3, SQS, SNS, CloudTrail) on 127.0.0.1 for the tests.

moto 5.2.5 answers CloudTrail ListPublicKeys with HTTP 500 NotImplementedError,
so this launcher patches it to answer from the keys file named by
TRAILMILL_MOTO_PUBLIC_KEYS (the output format of `aws cloudtrail
list-public-keys`), or with no keys.

Usage: moto-server.py PORT
"""
import json
import os
import sys

from moto.cloudtrail.responses import CloudTrailResponse


def list_public_keys(self):
    path = os.environ.get("TRAILMILL_MOTO_PUBLIC_KEYS")
    keys = json.load(open(path))["PublicKeyList"] if path else []
    return json.dumps({"PublicKeyList": keys})


CloudTrailResponse.list_public_keys = list_public_keys

from moto.server import main  # noqa: E402  (after the patch)

if __name__ == "__main__":
    main(["-H", "127.0.0.1", "-p", sys.argv[1]])
