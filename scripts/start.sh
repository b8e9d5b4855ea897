#!/usr/bin/env bash
# Runs Sealpost in embedded mode: every service in one process, SQLite under ./.sealpost, an in-process
# durable bus, a local keyring and a dev CA. Needs nothing but Node.js. Ctrl-C stops it cleanly.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/scripts/bootstrap.sh"
cd "$root"
exec node --import tsx services/runner/src/main.ts "$@"
