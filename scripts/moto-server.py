#!/usr/bin/env python3
"""Runs a moto server (S3, SQS, SNS, CloudTrail, Organizations) on 127.0.0.1
for the tests and for the reference validator (scripts/aws-validate-logs.py).

moto 5.2.5 answers CloudTrail ListPublicKeys with HTTP 500 NotImplementedError,
so this launcher patches it to answer from the keys file named by
TRAILMILL_MOTO_PUBLIC_KEYS (the output format of `aws cloudtrail
list-public-keys`), or with no keys. It also removes a per-request cost of
moto's server (see below), which the benchmarks would otherwise measure.

moto gives a new organization a random ID. An organization trail's files live
under `AWSLogs/ORG_ID/`, so the reference validator needs the organization it
creates to carry the trail's real ID: with TRAILMILL_MOTO_ORGANIZATION_ID set,
CreateOrganization uses that ID (one organization per server, as in AWS).

Usage: moto-server.py PORT
With PORT 0 the server listens on a free port and prints that port, one line
on stdout, once it accepts connections (no race between choosing a port and
binding it).
"""
import json
import os
import sys

import moto.backends
import moto.organizations.utils
from moto.cloudtrail.responses import CloudTrailResponse


def list_public_keys(self):
    path = os.environ.get("TRAILMILL_MOTO_PUBLIC_KEYS")
    keys = json.load(open(path))["PublicKeyList"] if path else []
    return json.dumps({"PublicKeyList": keys})


CloudTrailResponse.list_public_keys = list_public_keys

_org_id = os.environ.get("TRAILMILL_MOTO_ORGANIZATION_ID")
if _org_id:
    # moto's organizations model calls utils.make_random_org_id() through the
    # module, so replacing the module attribute is enough.
    moto.organizations.utils.make_random_org_id = lambda: _org_id

# moto's server routes every request by first checking whether the Host names
# one of its service modules, which lists its package folder and stats each of
# its ~200 entries, on every request: about a fifth of its time per S3 GET
# here, where stat is slow. The folder does not change while the server runs,
# so it is listed once.
_moto_modules = tuple(moto.backends.list_of_moto_modules())
moto.backends.list_of_moto_modules = lambda: _moto_modules

from moto.server import main  # noqa: E402  (after the patch)


def serve_on_a_free_port():
    """Binds 127.0.0.1:0, prints the port, then serves (as moto's main does)."""
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    app = DomainDispatcherApplication(create_backend_app)
    server = make_server(
        "127.0.0.1", 0, app, threaded=True, request_handler=MotoRequestHandler
    )
    port = server.server_address[1]
    # moto builds some URLs (SQS queue URLs) from MOTO_PORT.
    os.environ["MOTO_PORT"] = str(port)
    print(port, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    if sys.argv[1] == "0":
        serve_on_a_free_port()
    else:
        main(["-H", "127.0.0.1", "-p", sys.argv[1]])
