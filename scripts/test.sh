#!/usr/bin/env bash
# The test command: installs what is missing, starts the real peers the suites talk to (NATS 2.9 and a
# current NATS with TLS and per-service users, FerretDB, local-kms, the SES emulator), then runs every
# suite once. With CI=true a suite whose peer is missing fails instead of being skipped.
# Extra arguments go to jest, e.g. `bash scripts/test.sh packages/bus`.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/scripts/bootstrap.sh"
bash "$root/scripts/peers.sh" up
# kustomize (built once through the Go module proxy) for the deployment suites; fails on a manifest build error.
bash "$root/scripts/k8s-check.sh" render >/dev/null
cd "$root"
exec node_modules/.bin/jest --verbose "$@"
