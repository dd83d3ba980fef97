#!/usr/bin/env python3
"""The reference validator: the real, pinned `aws cloudtrail validate-logs`
(AWS CLI v1, awscli==1.46.2, installed by scripts/setup-oracle.sh), run
unchanged as a subprocess against a private moto server holding a trail that
lives in a local directory.

Usage (run with the venv python that scripts/setup-oracle.sh prints):
  aws-validate-logs.py --root DIR --bucket BUCKET --trail-arn ARN
      --public-keys KEYS.json --start-time T [--end-time T] [--s3-prefix P]
      [--org-id o-x] [--account-id ID] [--region R] [--verbose] [--merge]

The directory is the bucket: the file DIR/K becomes the object K, except the
sidecars. The hex text of a sidecar DIR/K.sig becomes object K's S3 metadata
`signature` (x-amz-meta-signature), with `signature-algorithm: SHA256withRSA`,
as CloudTrail stores them; an object without a sidecar gets no metadata, as if
it had been copied without it. KEYS.json is what `aws cloudtrail
list-public-keys` prints; the moto server answers ListPublicKeys from it.

Per call, this script
  1. starts scripts/moto-server.py (moto venv python: TRAILMILL_MOTO_PYTHON,
     default .venv/moto/bin/python) on a free port, as the trail ARN's account
     (MOTO_ACCOUNT_ID), so nothing is shared between concurrent calls;
  2. has it create, before it listens, the bucket in the ARN's region with the
     directory's objects, and the trail the ARN names: multi-region (so
     DescribeTrails lists it in every region, as AWS does), with --s3-prefix as
     its S3KeyPrefix and, with --org-id, as an organization trail of an
     organization with that ID (moto-server.py --setup, in-process: the same
     PutObject, CreateTrail and CreateOrganization requests over HTTP cost more
     than the CLI's whole run);
  3. runs `aws cloudtrail validate-logs --trail-arn ARN --start-time T
     [--end-time T] [--account-id ID] [--verbose] --region R` with
     AWS_ENDPOINT_URL pointing at the server, dummy credentials and none of this
     machine's AWS configuration. The CLI then makes its usual calls:
     DescribeTrails (bucket, prefix, organization flag), DescribeOrganization
     (organization trails), GetBucketLocation, ListObjects, GetObject and
     ListPublicKeys. --s3-prefix is not passed to the CLI: without --s3-bucket
     it would ignore it, and with --s3-bucket it skips DescribeTrails and so
     cannot find an organization trail's files;
  4. stops the server.

--region is the region whose digests are validated (default: the ARN's). The
CLI's stdout and stderr are printed unchanged (--merge: stderr after stdout, on
stdout), and its exit code is this script's: 0 all valid, 1 something invalid,
255 an error. --cli-seconds FILE writes the CLI's own wall time to FILE (the
benchmarks compare that, without the set-up). A failure of the harness itself
(moto does not start, a file cannot be read) exits with 3 and says so on
stderr.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
SIDECAR = ".sig"
ARN = re.compile(r"^arn:([^:]+):cloudtrail:([^:]+):(\d{12}):trail/(.+)$")


class HarnessError(Exception):
    """A failure of the harness, not a verdict of the CLI."""


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", required=True, help="the bucket's directory")
    ap.add_argument("--bucket", required=True)
    ap.add_argument("--trail-arn", required=True)
    ap.add_argument("--public-keys", required=True, help="list-public-keys output")
    ap.add_argument("--start-time", required=True)
    ap.add_argument("--end-time")
    ap.add_argument("--s3-prefix", help="the trail's S3KeyPrefix")
    ap.add_argument("--org-id", help="makes the trail an organization trail")
    ap.add_argument("--account-id")
    ap.add_argument("--region", help="the region validated (default: the ARN's)")
    ap.add_argument("--verbose", action="store_true")
    ap.add_argument(
        "--merge", action="store_true", help="print stderr after stdout, on stdout"
    )
    ap.add_argument(
        "--cli-seconds",
        metavar="FILE",
        help="write the CLI's own wall time (seconds) to FILE, for benchmarks",
    )
    return ap.parse_args()


class Moto:
    """A private moto server (scripts/moto-server.py) holding the trail,
    stopped by close()."""

    def __init__(self, account, keys, spec):
        python = os.environ.get("TRAILMILL_MOTO_PYTHON") or os.path.join(
            REPO, ".venv", "moto", "bin", "python"
        )
        if not os.path.exists(python):
            raise HarnessError(
                f"the moto python {python} is missing: run scripts/setup-moto.sh "
                "(or set TRAILMILL_MOTO_PYTHON)"
            )
        env = dict(os.environ)
        env["TRAILMILL_MOTO_PUBLIC_KEYS"] = os.path.abspath(keys)
        env["MOTO_ACCOUNT_ID"] = account
        # The server creates the bucket, objects and trail in-process before it
        # listens: over HTTP the same set-up costs more than the CLI's run.
        self.spec = tempfile.NamedTemporaryFile("w", suffix=".json")
        json.dump(spec, self.spec)
        self.spec.flush()
        # moto logs every request on stderr; kept in a file, shown on failure.
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            [python, os.path.join(HERE, "moto-server.py"), "0", "--setup", self.spec.name],
            stdout=subprocess.PIPE,
            stderr=self.log,
            env=env,
        )
        port = self.proc.stdout.readline().strip()
        if not port.isdigit():
            self.close()
            raise HarnessError(f"moto did not start:\n{self.server_log()}")
        self.endpoint = f"http://127.0.0.1:{int(port)}"

    def server_log(self):
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-4000:]

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        self.spec.close()


def objects(root):
    """[key, path, metadata] of every object the directory holds, sorted."""
    out = []
    for folder, _, files in os.walk(root):
        for name in files:
            if name.endswith(SIDECAR):
                continue
            path = os.path.join(folder, name)
            key = os.path.relpath(path, root).replace(os.sep, "/")
            meta = {}
            if os.path.isfile(path + SIDECAR):
                with open(path + SIDECAR) as f:
                    meta = {
                        "signature": f.read().strip(),
                        "signature-algorithm": "SHA256withRSA",
                    }
            out.append([key, path, meta])
    out.sort()
    return out


def cli_env(endpoint):
    """The CLI's environment: this one without any AWS setting of this machine."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_ENDPOINT_URL=endpoint,
        # Dummy credentials: moto accepts any well-formed ones.
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_EC2_METADATA_DISABLED="true",
    )
    return env


def main():
    a = parse_args()
    root = os.path.abspath(a.root)
    if not os.path.isdir(root):
        raise HarnessError(f"{root} is not a directory")
    if not os.path.isfile(a.public_keys):
        # moto would answer ListPublicKeys with an internal error instead.
        raise HarnessError(f"the public keys file {a.public_keys} is missing")
    aws = os.path.join(os.path.dirname(sys.executable), "aws")
    if not os.path.exists(aws):
        raise HarnessError(f"{aws} is missing: run scripts/setup-oracle.sh")
    m = ARN.match(a.trail_arn)
    spec = {"bucket": a.bucket, "objects": objects(root), "trail": None}
    if m:
        spec.update(account=m.group(3), region=m.group(2))
        spec["trail"] = {
            "arn": a.trail_arn,
            "name": m.group(4),
            "prefix": a.s3_prefix,
            "organization_id": a.org_id,
        }
    else:
        # With an ARN that does not parse there is no trail to create; the CLI
        # still runs, to fail the way it fails.
        spec.update(account="123456789012", region="us-east-1")
    moto = Moto(spec["account"], a.public_keys, spec)
    try:
        argv = [aws, "cloudtrail", "validate-logs", "--trail-arn", a.trail_arn]
        argv += ["--start-time", a.start_time]
        if a.end_time:
            argv += ["--end-time", a.end_time]
        if a.account_id:
            argv += ["--account-id", a.account_id]
        if a.verbose:
            argv.append("--verbose")
        argv += ["--region", a.region or spec["region"]]
        started = time.perf_counter()
        run = subprocess.run(argv, capture_output=True, env=cli_env(moto.endpoint))
        seconds = time.perf_counter() - started
    finally:
        moto.close()
    if a.cli_seconds:
        with open(a.cli_seconds, "w") as f:
            f.write(f"{seconds:.3f}\n")
    sys.stdout.buffer.write(run.stdout)
    (sys.stdout.buffer if a.merge else sys.stderr.buffer).write(run.stderr)
    return run.returncode


if __name__ == "__main__":
    try:
        sys.exit(main())
    except HarnessError as e:
        print(f"aws-validate-logs: {e}", file=sys.stderr)
        sys.exit(3)
