#!/usr/bin/env python3
"""Runs a moto server (S3, SQS, SNS, Glue, S3 Tables, CloudTrail, Organizations) on 127.0.0.1
for the tests and for the reference validator (scripts/aws-validate-logs.py).

moto 5.2.5 answers CloudTrail ListPublicKeys with HTTP 500 NotImplementedError,
so this launcher patches it to answer from the keys file named by
TRAILMILL_MOTO_PUBLIC_KEYS (the output format of `aws cloudtrail
list-public-keys`), or with no keys. moto 5.2.5 (and 5.2.6) also answers S3
Tables GetTable with `"managedByService": false`, where the service's model
has a string that is absent for a customer's own table; the AWS SDK for Rust
refuses the whole response ("expected ValueString or ValueNull"), so the
launcher drops the field when it is not a string. It also removes a
per-request cost of moto's server (see below), which the benchmarks would
otherwise measure.

Usage: moto-server.py PORT [--setup FILE]
With PORT 0 the server listens on a free port and prints that port, one line
on stdout, once it accepts connections (no race between choosing a port and
binding it).

--setup FILE creates resources before the server starts serving, in-process
through moto's own models (about ten times cheaper than the same requests over
HTTP, which the reference validator would pay on every call). FILE is JSON:
  {"account": ID, "region": R, "bucket": NAME,
   "objects": [[KEY, PATH, {METADATA NAME: VALUE}], ...],
   "trail": null | {"arn": ARN, "name": N, "prefix": P or null,
                    "organization_id": O or null}}
It creates the bucket in R, stores each file PATH as object KEY with that user
metadata (what PutObject's x-amz-meta-NAME headers store), then, when "trail"
is given, the multi-region trail (log file validation on) and, with
"organization_id", first an organization with that ID (moto would give it a
random one; an organization trail's files live under AWSLogs/ORG_ID/). The
server must run as ACCOUNT (MOTO_ACCOUNT_ID) so that requests see them.
"""
import json
import os
import sys

import moto.backends
from moto.cloudtrail.responses import CloudTrailResponse
from moto.s3tables.responses import S3TablesResponse


def list_public_keys(self):
    path = os.environ.get("TRAILMILL_MOTO_PUBLIC_KEYS")
    keys = json.load(open(path))["PublicKeyList"] if path else []
    return json.dumps({"PublicKeyList": keys})


CloudTrailResponse.list_public_keys = list_public_keys

_get_table = S3TablesResponse.get_table


def get_table(self):
    status, headers, body = _get_table(self)
    table = json.loads(body)
    if not isinstance(table.get("managedByService"), str):
        table.pop("managedByService", None)
    return status, headers, json.dumps(table)


S3TablesResponse.get_table = get_table

# moto's server routes every request by first checking whether the Host names
# one of its service modules, which lists its package folder and stats each of
# its ~200 entries, on every request: about a fifth of its time per S3 GET
# here, where stat is slow. The folder does not change while the server runs,
# so it is listed once.
_moto_modules = tuple(moto.backends.list_of_moto_modules())
moto.backends.list_of_moto_modules = lambda: _moto_modules

from moto.server import main  # noqa: E402  (after the patch)


def setup(spec):
    """Creates the bucket, objects, organization and trail of --setup."""
    import moto.organizations.utils
    from moto.cloudtrail.models import cloudtrail_backends
    from moto.organizations.models import organizations_backends
    from moto.s3.models import s3_backends
    from moto.utilities.utils import get_partition

    account, region = spec["account"], spec["region"]
    partition = get_partition(region)
    s3 = s3_backends[account][partition]
    s3.create_bucket(spec["bucket"], region)
    for key, path, metadata in spec["objects"]:
        with open(path, "rb") as f:
            obj = s3.put_object(spec["bucket"], key, f.read())
        obj.set_metadata({f"x-amz-meta-{k}": v for k, v in metadata.items()})
    trail = spec.get("trail")
    if not trail:
        return
    org_id = trail.get("organization_id")
    if org_id:
        # The model draws its ID from utils.make_random_org_id(), through the
        # module: replacing the module attribute gives it this one.
        moto.organizations.utils.make_random_org_id = lambda: org_id
        organizations_backends[account][partition].create_organization(
            region, FeatureSet="ALL"
        )
    created = cloudtrail_backends[account][region].create_trail(
        name=trail["name"],
        bucket_name=spec["bucket"],
        s3_key_prefix=trail.get("prefix"),
        sns_topic_name=None,
        is_global=True,
        is_multi_region=True,
        log_validation=True,
        is_org_trail=bool(org_id),
        cw_log_group_arn=None,
        cw_role_arn=None,
        kms_key_id=None,
        tags_list=[],
    )
    if created.arn != trail["arn"]:
        sys.exit(f"moto-server: created trail {created.arn}, not {trail['arn']}")


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
    if len(sys.argv) == 4 and sys.argv[2] == "--setup":
        with open(sys.argv[3]) as f:
            setup(json.load(f))
    elif len(sys.argv) != 2:
        sys.exit("usage: moto-server.py PORT [--setup FILE]")
    if sys.argv[1] == "0":
        serve_on_a_free_port()
    else:
        main(["-H", "127.0.0.1", "-p", sys.argv[1]])
