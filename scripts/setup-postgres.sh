#!/usr/bin/env bash
# Starts the private PostgreSQL cluster the tests and benchmarks use, and
# prints its connection URL (also written to .state/pg/url).
#
#   url="$(scripts/setup-postgres.sh)"        # start (or reuse) the cluster
#   scripts/setup-postgres.sh stop            # stop it
#
# - Installs Debian's `postgresql` package if no server binaries are found.
# - The cluster lives in .state/pg inside the repository (override: PG_STATE),
#   listens on 127.0.0.1 only, on a free port chosen at initdb time and kept
#   in .state/pg/port, and trusts local connections (a test cluster only).
# - initdb and the server refuse to run as root: as root they run as the
#   `postgres` user (created if missing), which then owns .state/pg.
# - Idempotent: a running cluster is reused; a stopped one is started.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
state="${PG_STATE:-$repo/.state/pg}"
data="$state/data"
log() { echo "setup-postgres: $*" >&2; }

bindir="${PG_BINDIR:-}"
find_bindir() {
    [ -n "$bindir" ] && return 0
    local d
    for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then
            bindir="$d"
            return 0
        fi
    done
    return 1
}
if ! find_bindir; then
    log "no PostgreSQL server found: installing Debian's postgresql package"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y postgresql >&2 || { apt-get update >&2 && apt-get install -y postgresql >&2; }
    find_bindir || { log "still no initdb under /usr/lib/postgresql/*/bin"; exit 1; }
fi

# Run as the cluster's owner: ourselves, or `postgres` when we are root.
if [ "$(id -u)" -eq 0 ]; then
    owner=postgres
    id "$owner" >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql --shell /bin/bash "$owner"
    as_owner() { runuser -u "$owner" -- "$@"; }
else
    owner="$(id -un)"
    as_owner() { "$@"; }
fi

if [ "${1:-}" = stop ]; then
    if [ -f "$data/PG_VERSION" ]; then
        as_owner "$bindir/pg_ctl" -D "$data" -m fast stop >&2 || true
    fi
    exit 0
fi

mkdir -p "$state"
if [ ! -f "$data/PG_VERSION" ]; then
    # A free port: let the kernel pick one, then keep it for this cluster.
    port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    log "initdb in $data (port $port, owner $owner)"
    rm -rf "$data"
    mkdir -p "$data"
    chown "$owner" "$state" "$data"
    chmod 700 "$data"
    as_owner "$bindir/initdb" -D "$data" -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 >&2
    # Tuned for bulk loading on a small machine; durability stays on
    # (fsync, full_page_writes): the crash tests kill trailmill, not the server.
    cat >>"$data/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = ''
max_connections = 100
shared_buffers = 256MB
maintenance_work_mem = 256MB
max_wal_size = 4GB
checkpoint_timeout = 15min
wal_buffers = 64MB
synchronous_commit = on
EOF
    echo "$port" >"$state/port"
fi
port="$(cat "$state/port")"
# The repository may sit under a directory the owner cannot enter by
# default; the owner needs to reach its own data directory.
if [ "$owner" != "$(id -un)" ]; then
    chown -R "$owner" "$data"
    d="$state"
    while [ "$d" != / ]; do
        chmod o+x "$d" 2>/dev/null || true
        d="$(dirname "$d")"
    done
fi

# TLS, for the TLS tests: a self-signed end-entity certificate (webpki
# refuses a CA certificate as a server's) for 127.0.0.1 and localhost;
# clients verify it with sslrootcert=.state/pg/server.crt.
if [ ! -f "$state/server.crt" ] && command -v openssl >/dev/null; then
    log "creating a self-signed server certificate"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=localhost" \
        -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
        -addext "basicConstraints=critical,CA:FALSE" -addext "extendedKeyUsage=serverAuth" \
        -keyout "$data/server.key" -out "$data/server.crt" >/dev/null 2>&1
    chown "$owner" "$data/server.key" "$data/server.crt"
    chmod 600 "$data/server.key"
    cp "$data/server.crt" "$state/server.crt"
    printf "ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n" >>"$data/postgresql.conf"
    if as_owner "$bindir/pg_ctl" -D "$data" status >/dev/null 2>&1; then
        as_owner "$bindir/pg_ctl" -D "$data" reload >&2
    fi
fi

if ! as_owner "$bindir/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    log "starting PostgreSQL $("$bindir/postgres" --version | awk '{print $3}') on 127.0.0.1:$port"
    as_owner "$bindir/pg_ctl" -D "$data" -l "$data/server.log" -w -t 60 start >&2 \
        || { log "start failed; the server log says:"; tail -20 "$data/server.log" >&2; exit 1; }
fi
for _ in $(seq 1 50); do
    "$bindir/pg_isready" -q -h 127.0.0.1 -p "$port" && break
    sleep 0.2
done
"$bindir/pg_isready" -q -h 127.0.0.1 -p "$port" || { log "the server does not answer on port $port"; exit 1; }
url="postgres://postgres@127.0.0.1:$port/postgres"
echo "$url" >"$state/url"
echo "$url"
