#!/usr/bin/env bash
# Puts a fresh machine in shape to run Sealpost: pnpm at the pinned version and the workspace's
# dependencies from the lockfile. Safe to run again; fast when nothing changed. Sourced by start.sh/test.sh.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
pnpm_version=12.4.2

node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$node_major" -lt 20 ]; then
  echo "Sealpost needs Node.js 20.19 or newer (found: $(node --version 2>/dev/null || echo none))" >&2
  exit 1
fi
if [ "$(pnpm --version 2>/dev/null)" != "$pnpm_version" ]; then
  echo "installing pnpm $pnpm_version (corepack's signature check fails on these machines)"
  npm install --global --silent "pnpm@$pnpm_version"
fi
# better-sqlite3 compiles from source against the installed Node headers: its prebuilt binary and
# node-gyp's header download both need hosts this machine cannot reach.
export npm_config_nodedir=${npm_config_nodedir:-/usr}
stamp="$root/node_modules/.sealpost-install-stamp"
lock_sum=$(sha256sum "$root/pnpm-lock.yaml" | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$lock_sum" ]; then
  echo "installing dependencies (first run builds SQLite from source, about a minute)"
  (cd "$root" && pnpm install --frozen-lockfile)
  echo "$lock_sum" >"$stamp"
fi
