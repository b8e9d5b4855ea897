#!/usr/bin/env bash
# Real test peers for Sealpost's integration tests and benchmarks.
#
#   bash scripts/peers.sh up       build (first time) and start every peer, wait until each is ready,
#                                  print one line per peer, write .peers/peers.json; idempotent
#   bash scripts/peers.sh down     stop what `up` started (by pid file); the machine's NATS is left alone
#   bash scripts/peers.sh status   one line per peer
#   bash scripts/peers.sh build    only build/install the Go binaries into the cache (e.g. to warm a machine)
#
# Peers (all on loopback):
#   nats      the machine's NATS 2.9.10 on 127.0.0.1:4222 (started by the machine; `up` only checks it,
#             and starts it with start-stop-daemon if it does not answer)
#   nats-tls  a 3-node JetStream cluster of a current nats-server (2.12, else 2.11) on 127.0.0.1:4223, :4224
#             and :4225 (routes on :6223-6225, monitoring/healthz on :8223-8225, state in
#             .peers/nats-tls/node-<i>/): TLS with a test CA (ECDSA P-256), one user per Sealpost service with
#             permissions generated from packages/bus/src/topology.ts (scripts/render-nats-config.ts), plus an
#             `admin` user. Three nodes so that R3 streams (required by production mode) can be created.
#   mongo     FerretDB v1 (MongoDB wire protocol) on 127.0.0.1:27018, SQLite backend under .peers
#   kms       local-kms (AWS KMS API emulator) on port 4599, region eu-west-1
#   ses       aws-ses-v2-local (npm devDependency) on 127.0.0.1:8005; sent mail at GET /store
#   nats-cli  the `nats` CLI (used by `pnpm bench bus` for `nats bench`); installed, not started
#
# Go binaries are built from the Go module proxy with `go install` into a cache checked first:
#   ${SEALPOST_PEERS_CACHE:-$HOME/.cache/sealpost-peers}/bin   (a stamp file per binary records its version)
# The first `up` on a fresh machine builds them (a few minutes on 2 cores; progress is printed); later runs
# only start processes. Runtime state (configs, certs, passwords, data, logs, pid files) lives in .peers/
# at the repository root (gitignored). Secrets there are mode 0600.
#
# FerretDB note: `go install .../cmd/ferretdb@v1.24.2` builds, but the binary panics at start ("Invalid
# build/version/version.txt file content") because the module zip lacks the generated version.txt. So we
# copy the module source from the module cache, write version.txt and `go build` that copy.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PEERS_DIR="$ROOT/.peers"
CACHE_DIR="${SEALPOST_PEERS_CACHE:-$HOME/.cache/sealpost-peers}"
BIN="$CACHE_DIR/bin"
LOGS="$PEERS_DIR/logs"

# First entry is preferred; later ones are fallbacks if the proxy refuses or the build fails.
NATS_SERVER_VERSIONS=(v2.12.15 v2.11.17)
FERRETDB_VERSION=v1.24.2
FERRETDB_FALLBACK_TOOLCHAIN=go1.22.12
LOCAL_KMS_VERSION=v0.0.0-20260228092603-2a5e92d09ab6
NATSCLI_VERSION=v0.5.0

HOST=127.0.0.1
MACHINE_NATS_PORT=4222
NATS_TLS_PORT=4223
NATS_TLS_HTTP_PORT=8223
NATS_TLS_CLUSTER_PORT=6223
NATS_TLS_NODES=3
MONGO_PORT=27018
KMS_PORT=4599
KMS_REGION=eu-west-1
SES_PORT=8005
READY_TIMEOUT="${SEALPOST_PEERS_READY_TIMEOUT:-60}"

log() { printf '[peers] %s\n' "$*" >&2; }
say() { printf '%-9s %s\n' "$1" "$2"; }

# ---------------------------------------------------------------- prerequisites

apt_install() {
  log "installing Debian packages: $*"
  if [[ ! -f /tmp/.sealpost-apt-updated ]]; then apt-get update -qq >&2 && touch /tmp/.sealpost-apt-updated; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2
}

ensure_prereqs() {
  [[ -d /usr/local/go/bin ]] && export PATH="/usr/local/go/bin:$PATH"
  local missing=()
  command -v go >/dev/null || missing+=(golang-go)
  command -v openssl >/dev/null || missing+=(openssl)
  command -v curl >/dev/null || missing+=(curl)
  command -v setsid >/dev/null || missing+=(util-linux)
  command -v flock >/dev/null || missing+=(util-linux)
  ((${#missing[@]} == 0)) || apt_install "${missing[@]}"
  if [[ ! -x "$ROOT/node_modules/.bin/tsx" || ! -x "$ROOT/node_modules/.bin/aws-ses-v2-local" ]]; then
    command -v pnpm >/dev/null || npm i -g pnpm@12.4.2 >&2
    log "installing node_modules (pnpm install --frozen-lockfile)"
    (cd "$ROOT" && flock /tmp/sealpost-pnpm.lock env npm_config_nodedir=/usr pnpm install --frozen-lockfile >&2)
  fi
}

# ---------------------------------------------------------------- building

# Runs a build in the background and prints progress every 20 s so a slow first build is visible.
run_build() {
  local name="$1" logfile="$2"
  shift 2
  local started=$SECONDS
  ("$@") >"$logfile" 2>&1 9>&- &
  local pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    sleep 2
    if (((SECONDS - started) % 20 < 2 && SECONDS - started >= 20)); then
      log "  still building $name ($((SECONDS - started)) s; last: $(tail -n 1 "$logfile" 2>/dev/null | cut -c1-100))"
    fi
  done
  if wait "$pid"; then
    log "  built $name in $((SECONDS - started)) s"
    return 0
  fi
  log "  building $name FAILED after $((SECONDS - started)) s; last lines of $logfile:"
  tail -n 15 "$logfile" | sed 's/^/    /' >&2
  return 1
}

cached() { [[ -x "$BIN/$1" && "$(cat "$BIN/.$1.version" 2>/dev/null)" == "$2" ]]; }

go_install() {
  local name="$1" spec="$2" toolchain="${3:-}"
  cached "$name" "$spec" && return 0
  mkdir -p "$BIN" "$CACHE_DIR/logs"
  log "building $name from $spec via the Go module proxy${toolchain:+ (GOTOOLCHAIN=$toolchain)} (log: $CACHE_DIR/logs/build-$name.log)"
  if run_build "$name" "$CACHE_DIR/logs/build-$name.log" \
    env GOBIN="$BIN" GOFLAGS=-trimpath ${toolchain:+GOTOOLCHAIN=$toolchain} go install -v "$spec"; then
    echo "$spec" >"$BIN/.$name.version"
    return 0
  fi
  return 1
}

build_nats_server() {
  local v
  for v in "${NATS_SERVER_VERSIONS[@]}"; do
    cached nats-server "github.com/nats-io/nats-server/v2@$v" && return 0
  done
  for v in "${NATS_SERVER_VERSIONS[@]}"; do
    go_install nats-server "github.com/nats-io/nats-server/v2@$v" && return 0
    log "nats-server $v failed; trying the next version"
  done
  return 1
}

build_ferretdb_with() {
  local toolchain="$1" src="$CACHE_DIR/src/ferretdb-$FERRETDB_VERSION"
  local dir
  dir="$(cd "$CACHE_DIR" && env ${toolchain:+GOTOOLCHAIN=$toolchain} GOFLAGS=-mod=mod \
    go mod download -json "github.com/FerretDB/FerretDB@$FERRETDB_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
  [[ -n "$dir" && -d "$dir" ]] || { log "go mod download of FerretDB $FERRETDB_VERSION failed"; return 1; }
  rm -rf "$src" && mkdir -p "$(dirname "$src")" && cp -r "$dir" "$src" && chmod -R u+w "$src"
  echo "$FERRETDB_VERSION" >"$src/build/version/version.txt"
  run_build ferretdb "$CACHE_DIR/logs/build-ferretdb.log" \
    env -C "$src" ${toolchain:+GOTOOLCHAIN=$toolchain} go build -v -trimpath -o "$BIN/ferretdb" ./cmd/ferretdb
}

build_ferretdb() {
  local spec="github.com/FerretDB/FerretDB/cmd/ferretdb@$FERRETDB_VERSION+version.txt"
  cached ferretdb "$spec" && return 0
  mkdir -p "$BIN" "$CACHE_DIR/logs"
  log "building ferretdb $FERRETDB_VERSION from the module source (log: $CACHE_DIR/logs/build-ferretdb.log)"
  if build_ferretdb_with "" || { log "retrying with GOTOOLCHAIN=$FERRETDB_FALLBACK_TOOLCHAIN" && build_ferretdb_with "$FERRETDB_FALLBACK_TOOLCHAIN"; }; then
    echo "$spec" >"$BIN/.ferretdb.version"
    rm -rf "$CACHE_DIR/src"
    return 0
  fi
  return 1
}

# ---------------------------------------------------------------- processes

port_open() { timeout 2 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null; }

# Pid from the pid file if that process is alive and still runs the expected program (pids get reused).
running_pid() {
  local name="$1" prog="$2" pid
  pid="$(cat "$PEERS_DIR/$name.pid" 2>/dev/null)" || return 1
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$prog" || return 1
  echo "$pid"
}

# Before starting NAME: its port must be free, or a foreign process would answer in its place.
port_free() {
  if port_open "$HOST" "$2"; then
    log "$1: port $2 is in use by a process not started by this script (its pid file is missing or stale)"
    return 1
  fi
}

# start_bg NAME -- COMMAND...: detached (own session, no inherited lock fd), output to .peers/logs/NAME.log.
start_bg() {
  local name="$1"
  shift
  mkdir -p "$LOGS"
  printf '\n--- %s start\n' "$(date -Is)" >>"$LOGS/$name.log"
  setsid "$@" >>"$LOGS/$name.log" 2>&1 </dev/null 9>&- &
  echo $! >"$PEERS_DIR/$name.pid"
}

# wait_ready NAME PROG CHECK...: polls CHECK until it succeeds; fails early if the process died.
wait_ready() {
  local name="$1" prog="$2"
  shift 2
  local deadline=$((SECONDS + READY_TIMEOUT))
  until "$@" >/dev/null 2>&1; do
    # Alive is enough here: right after start_bg the pid may still be the forked shell that has not yet exec'd
    # PROG, so running_pid's command-line check would report a healthy start as an exit.
    if [[ -n "$prog" ]] && ! kill -0 "$(cat "$PEERS_DIR/$name.pid" 2>/dev/null)" 2>/dev/null; then
      log "$name exited; last lines of $LOGS/$name.log:"
      tail -n 15 "$LOGS/$name.log" | sed 's/^/    /' >&2
      return 1
    fi
    ((SECONDS < deadline)) || { log "$name not ready after ${READY_TIMEOUT}s (log: $LOGS/$name.log)"; return 1; }
    sleep 0.3
  done
}

stop_pid() {
  local name="$1" prog="$2" pid i
  if pid="$(running_pid "$name" "$prog")"; then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    say "$name" "stopped (pid $pid)"
  else
    say "$name" "not running"
  fi
  rm -f "$PEERS_DIR/$name.pid"
}

# ---------------------------------------------------------------- readiness checks

nats_info() { timeout 3 bash -c "exec 3<>/dev/tcp/$HOST/$1; head -c 4 <&3" 2>/dev/null | grep -q INFO; }
# Full healthz: on a clustered node it answers 200 only once the JetStream meta group has a current leader.
nats_tls_healthy() { curl -fsS "http://$HOST:$((NATS_TLS_HTTP_PORT + $1 - 1))/healthz" >/dev/null; }
mongo_ping() {
  # A real driver ping, as the tests will do (FerretDB answers TCP before its backend is ready).
  (cd "$ROOT/packages/testkit" && node -e "
    const { MongoClient } = require('mongodb');
    const c = new MongoClient('mongodb://$HOST:$MONGO_PORT/', { serverSelectionTimeoutMS: 2000 });
    c.db('admin').command({ ping: 1 }).then((r) => c.close().then(() => process.exit(r.ok === 1 ? 0 : 1)), () => process.exit(1));
  ")
}
kms_ready() {
  curl -fsS -X POST "http://$HOST:$KMS_PORT/" -H 'Content-Type: application/x-amz-json-1.1' \
    -H 'X-Amz-Target: TrentService.ListKeys' -d '{}' >/dev/null
}
ses_ready() { curl -fsS "http://$HOST:$SES_PORT/store" >/dev/null; }

# ---------------------------------------------------------------- peers

up_nats() {
  if ! nats_info "$MACHINE_NATS_PORT"; then
    [[ -x /usr/sbin/nats-server ]] || apt_install nats-server
    log "machine NATS on :$MACHINE_NATS_PORT does not answer; starting it"
    mkdir -p /var/lib/nats-server
    start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- \
      -a 127.0.0.1 -p "$MACHINE_NATS_PORT" -js -sd /var/lib/nats-server -l /var/log/nats-server.log 9>&-
    wait_ready nats "" nats_info "$MACHINE_NATS_PORT" || return 1
  fi
  say nats "ready  nats://$HOST:$MACHINE_NATS_PORT (machine's nats-server $(/usr/sbin/nats-server --version 2>/dev/null | awk '{print $2}'))"
}

make_certs() {
  local d="$PEERS_DIR/certs"
  if [[ -f "$d/server.pem" ]] && openssl x509 -checkend 86400 -noout -in "$d/server.pem" >/dev/null 2>&1 &&
    openssl x509 -checkend 86400 -noout -in "$d/ca.pem" >/dev/null 2>&1; then
    return 0
  fi
  log "generating test CA and server certificate (ECDSA P-256) in $d"
  mkdir -p "$d" && chmod 700 "$d"
  (
    cd "$d"
    umask 077
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ca-key.pem 2>/dev/null
    openssl req -x509 -new -key ca-key.pem -sha256 -days 365 -subj '/CN=Sealpost test CA' \
      -addext 'basicConstraints=critical,CA:TRUE' -addext 'keyUsage=critical,keyCertSign,cRLSign' -out ca.pem
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out server-key.pem 2>/dev/null
    openssl req -new -key server-key.pem -subj '/CN=localhost' -out server.csr
    printf '%s\n' 'subjectAltName=IP:127.0.0.1,DNS:localhost' 'basicConstraints=critical,CA:FALSE' \
      'keyUsage=critical,digitalSignature' 'extendedKeyUsage=serverAuth' >server.ext
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca-key.pem -set_serial "0x$(openssl rand -hex 16)" \
      -days 365 -sha256 -extfile server.ext -out server.pem 2>/dev/null
    rm -f server.csr server.ext
    chmod 644 ca.pem server.pem
  )
}

nats_tls_node_port() { echo $((NATS_TLS_PORT + $1 - 1)); }

up_nats_tls() {
  build_nats_server || return 1
  make_certs || return 1
  # Before the cluster: one node on :4223 with pid file nats-tls.pid and state in .peers/nats-tls/jetstream.
  if running_pid nats-tls "$BIN/nats-server" >/dev/null; then
    log "stopping the former single-node nats-tls (now a $NATS_TLS_NODES-node cluster)"
    stop_pid nats-tls "$BIN/nats-server" >/dev/null
    rm -rf "$PEERS_DIR/nats-tls/jetstream" "$PEERS_DIR/nats-tls/nats.conf"
  fi
  local tsx="$ROOT/node_modules/.bin/tsx"
  "$tsx" "$ROOT/scripts/render-nats-config.ts" --dir "$PEERS_DIR" --nodes "$NATS_TLS_NODES" --port "$NATS_TLS_PORT" \
    --http-port "$NATS_TLS_HTTP_PORT" --cluster-port "$NATS_TLS_CLUSTER_PORT" >/dev/null || return 1
  local i conf pid
  # Start every node first, then wait: a clustered node is healthy only once its peers are up.
  for ((i = 1; i <= NATS_TLS_NODES; i++)); do
    conf="$PEERS_DIR/nats-tls/node-$i/nats.conf"
    if pid="$(running_pid "nats-tls-$i" "$BIN/nats-server")"; then
      # Pick up regenerated permissions or certificates without a restart.
      kill -HUP "$pid"
    else
      "$BIN/nats-server" -t -c "$conf" >/dev/null 2>"$LOGS/nats-tls-check.log" || {
        log "node $i nats.conf rejected:"; sed 's/^/    /' "$LOGS/nats-tls-check.log" >&2; return 1
      }
      port_free "nats-tls-$i" "$(nats_tls_node_port "$i")" || return 1
      start_bg "nats-tls-$i" "$BIN/nats-server" -c "$conf"
    fi
  done
  local urls=()
  for ((i = 1; i <= NATS_TLS_NODES; i++)); do
    wait_ready "nats-tls-$i" "$BIN/nats-server" nats_tls_healthy "$i" || return 1
    urls+=("tls://$HOST:$(nats_tls_node_port "$i")")
  done
  say nats-tls "ready  ${urls[*]} ($("$BIN/nats-server" --version | awk '{print $2}'), JetStream cluster of $NATS_TLS_NODES, $(grep -c 'permissions:' "$PEERS_DIR/nats-tls/node-1/nats.conf") service users + admin)"
}

up_mongo() {
  build_ferretdb || return 1
  local d="$PEERS_DIR/ferretdb"
  mkdir -p "$d/data" "$d/state"
  if ! running_pid mongo "$BIN/ferretdb" >/dev/null; then
    port_free mongo "$MONGO_PORT" || return 1
    start_bg mongo "$BIN/ferretdb" --listen-addr="$HOST:$MONGO_PORT" --handler=sqlite \
      --sqlite-url="file:$d/data/" --state-dir="$d/state" --debug-addr=- --telemetry=disable --log-level=warn
  fi
  wait_ready mongo "$BIN/ferretdb" mongo_ping || return 1
  say mongo "ready  mongodb://$HOST:$MONGO_PORT/ (FerretDB $FERRETDB_VERSION, SQLite backend)"
}

up_kms() {
  go_install local-kms "github.com/nsmithuk/local-kms@$LOCAL_KMS_VERSION" || return 1
  mkdir -p "$PEERS_DIR/kms"
  if ! running_pid kms "$BIN/local-kms" >/dev/null; then
    port_free kms "$KMS_PORT" || return 1
    # local-kms binds all interfaces (":PORT", not configurable); clients use 127.0.0.1 only.
    start_bg kms env PORT="$KMS_PORT" KMS_DATA_PATH="$PEERS_DIR/kms" KMS_REGION="$KMS_REGION" \
      KMS_SEED_PATH="$PEERS_DIR/kms/no-seed.yaml" "$BIN/local-kms"
  fi
  wait_ready kms "$BIN/local-kms" kms_ready || return 1
  say kms "ready  http://$HOST:$KMS_PORT (local-kms, region $KMS_REGION)"
}

up_ses() {
  local ses="$ROOT/node_modules/.bin/aws-ses-v2-local"
  [[ -x "$ses" ]] || { log "aws-ses-v2-local missing from node_modules"; return 1; }
  if ! running_pid ses aws-ses-v2-local >/dev/null; then
    port_free ses "$SES_PORT" || return 1
    start_bg ses "$ses" --host "$HOST" --port "$SES_PORT"
  fi
  wait_ready ses aws-ses-v2-local ses_ready || return 1
  say ses "ready  http://$HOST:$SES_PORT (aws-ses-v2-local)"
}

up_nats_cli() {
  go_install nats "github.com/nats-io/natscli/nats@$NATSCLI_VERSION" || return 1
  say nats-cli "ready  $BIN/nats ($("$BIN/nats" --version 2>&1 | head -n 1))"
}

write_peers_json() {
  local ok="$1"
  PEERS_DIR="$PEERS_DIR" OK="$ok" BIN="$BIN" HOST="$HOST" node -e '
    const fs = require("node:fs");
    const { PEERS_DIR: dir, OK, BIN: bin, HOST: h } = process.env;
    const ok = new Set(OK.split(" ").filter(Boolean));
    const out = {};
    if (ok.has("nats")) out.nats = { url: `nats://${h}:'"$MACHINE_NATS_PORT"'` };
    if (ok.has("nats-tls")) {
      const u = JSON.parse(fs.readFileSync(`${dir}/nats-tls/users.json`, "utf8"));
      const urls = Array.from({ length: '"$NATS_TLS_NODES"' }, (_, i) => `tls://${h}:${'"$NATS_TLS_PORT"' + i}`);
      out.natsTls = { url: urls[0], urls, ca: `${dir}/certs/ca.pem`, users: u.users, admin: u.admin };
    }
    if (ok.has("mongo")) out.mongo = { url: `mongodb://${h}:'"$MONGO_PORT"'/` };
    if (ok.has("kms")) out.kms = { endpoint: `http://${h}:'"$KMS_PORT"'`, region: "'"$KMS_REGION"'" };
    if (ok.has("ses")) out.ses = { endpoint: `http://${h}:'"$SES_PORT"'` };
    if (ok.has("nats-cli")) out.natsCli = `${bin}/nats`;
    const file = `${dir}/peers.json`;
    fs.writeFileSync(`${file}.tmp`, JSON.stringify(out, null, 2) + "\n", { mode: 0o600 });
    fs.renameSync(`${file}.tmp`, file);
  '
}

cmd_up() {
  ensure_prereqs
  local ok="" failed="" peer
  for peer in nats nats-tls mongo kms ses nats-cli; do
    if "up_${peer//-/_}"; then ok+="$peer "; else failed+="$peer "; say "$peer" "FAILED (see above)"; fi
  done
  write_peers_json "$ok"
  log "wrote $PEERS_DIR/peers.json"
  [[ -z "$failed" ]] || { log "failed: $failed"; return 1; }
}

cmd_build() {
  ensure_prereqs
  build_nats_server && build_ferretdb && go_install local-kms "github.com/nsmithuk/local-kms@$LOCAL_KMS_VERSION" &&
    go_install nats "github.com/nats-io/natscli/nats@$NATSCLI_VERSION" && log "binaries ready in $BIN"
}

cmd_down() {
  local i
  for ((i = 1; i <= NATS_TLS_NODES; i++)); do stop_pid "nats-tls-$i" "$BIN/nats-server"; done
  # The single node of earlier versions of this script, if one still runs.
  running_pid nats-tls "$BIN/nats-server" >/dev/null && stop_pid nats-tls "$BIN/nats-server"
  stop_pid mongo "$BIN/ferretdb"
  stop_pid kms "$BIN/local-kms"
  stop_pid ses aws-ses-v2-local
  rm -f "$PEERS_DIR/peers.json"
}

status_line() {
  local name="$1" prog="$2" addr="$3" pid
  if pid="$(running_pid "$name" "$prog")"; then say "$name" "running (pid $pid)  $addr"; else say "$name" "stopped  $addr"; fi
}

cmd_status() {
  if nats_info "$MACHINE_NATS_PORT"; then say nats "answering  nats://$HOST:$MACHINE_NATS_PORT (machine)"; else say nats "not answering  nats://$HOST:$MACHINE_NATS_PORT (machine)"; fi
  local i
  for ((i = 1; i <= NATS_TLS_NODES; i++)); do
    status_line "nats-tls-$i" "$BIN/nats-server" "tls://$HOST:$(nats_tls_node_port "$i")"
  done
  status_line mongo "$BIN/ferretdb" "mongodb://$HOST:$MONGO_PORT/"
  status_line kms "$BIN/local-kms" "http://$HOST:$KMS_PORT"
  status_line ses aws-ses-v2-local "http://$HOST:$SES_PORT"
  if [[ -x "$BIN/nats" ]]; then say nats-cli "installed  $BIN/nats"; else say nats-cli "not installed"; fi
}

main() {
  local cmd="${1:-}"
  case "$cmd" in
    up | down | status | build) ;;
    *) echo "usage: $0 up|down|status|build" >&2; exit 2 ;;
  esac
  mkdir -p "$PEERS_DIR" "$LOGS"
  chmod 700 "$PEERS_DIR"
  if [[ "$cmd" != status ]]; then
    # Parallel callers (several test runs, CI steps) serialise here; fd 9 is closed in every child.
    exec 9>"$PEERS_DIR/.lock"
    flock 9
  fi
  "cmd_$cmd"
}

main "$@"
