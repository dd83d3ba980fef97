#!/usr/bin/env python3
"""Runs a moto server (S3, SQS, SNS, CloudTrail) on 127.0.0.1 for the tests.

moto 5.2.5 answers CloudTrail ListPublicKeys with HTTP 500 NotImplementedError,
so this launcher patches it to answer from the keys file named by
TRAILMILL_MOTO_PUBLIC_KEYS (the output format of `aws cloudtrail
list-public-keys`), or with no keys. It also removes a per-request cost of
moto's server (see below), which the benchmarks would otherwise measure.

Usage: moto-server.py PORT
"""
import json
import os
import sys

import moto.backends
from moto.cloudtrail.responses import CloudTrailResponse


def list_public_keys(self):
    path = os.environ.get("TRAILMILL_MOTO_PUBLIC_KEYS")
    keys = json.load(open(path))["PublicKeyList"] if path else []
    return json.dumps({"PublicKeyList": keys})


CloudTrailResponse.list_public_keys = list_public_keys

# moto's server routes every request by first checking whether the Host names
# one of its service modules, which lists its package folder and stats each of
# its ~200 entries, on every request: about a fifth of its time per S3 GET
# here, where stat is slow. The folder does not change while the server runs,
# so it is listed once.
_moto_modules = tuple(moto.backends.list_of_moto_modules())
moto.backends.list_of_moto_modules = lambda: _moto_modules

from moto.server import main  # noqa: E402  (after the patch)

if __name__ == "__main__":
    main(["-H", "127.0.0.1", "-p", sys.argv[1]])
