#!/usr/bin/env bash
# Builds the runtime tree of one Sealpost service image into a directory: exactly the build steps of
# deploy/Dockerfile, which RUNs this script, so the image recipe and the offline test
# (deploy/test/container-build.test.ts) cannot drift apart.
#
#   bash deploy/build-image-dir.sh SERVICE OUTDIR      e.g. bash deploy/build-image-dir.sh audit /tmp/audit-image
#
# Needs the workspace installed (`pnpm install --frozen-lockfile`) and OUTDIR absent or empty. Steps:
#   1. `pnpm deploy --prod`: the service with its production dependencies only; workspace packages are
#      copied in (injected), not linked.
#   2. deploy/image/compile-tree.mjs: every TypeScript source of the service and of the injected @sealpost/*
#      packages compiled to CommonJS with @swc/core (the image runs plain `node`), `main`/`exports` rewritten
#      to the .js files, tests/benchmarks/tools removed, the dev CA and dev-token modules replaced by stubs
#      that refuse (see deploy/image/stubs/), build leftovers of native modules removed.
#   3. The .proto sources where @sealpost/proto's PROTO_ROOT points (server reflection loads them at start).
#   4. deploy/healthcheck.mjs and image.json (service name, health port) for the image's HEALTHCHECK.
#   5. Checks: no devDependency (jest, typescript, swc, tsx, esbuild, testkit, …) and no .ts file is left.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SERVICE="${1:-}"
OUT="${2:-}"
log() { printf '[build-image-dir] %s\n' "$*" >&2; }

[[ -n "$SERVICE" && -n "$OUT" ]] || { echo "usage: $0 SERVICE OUTDIR" >&2; exit 2; }
[[ "$SERVICE" =~ ^[a-z][a-z0-9-]{0,40}$ ]] || { echo "invalid service name" >&2; exit 2; }
[[ -f "$ROOT/services/$SERVICE/package.json" ]] || { echo "no service $SERVICE under services/" >&2; exit 2; }
[[ -f "$ROOT/services/$SERVICE/src/main.ts" ]] || { echo "services/$SERVICE has no src/main.ts" >&2; exit 2; }
if [[ -e "$OUT" ]] && [[ -n "$(ls -A "$OUT")" ]]; then echo "$OUT is not empty" >&2; exit 2; fi
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"

log "1/5 pnpm deploy --prod @sealpost/$SERVICE"
# Copy, never hard-link: the next step rewrites package.json files and stubs modules in place, and a hard link
# would carry those edits back into the workspace (and the pnpm store).
(cd "$ROOT" && pnpm --filter "@sealpost/$SERVICE" deploy --prod --prefer-offline --config.package-import-method=copy "$OUT" >&2)
shared="$(find "$OUT" -type f -links +1 | head -n 1)"
[[ -z "$shared" ]] || { echo "build tree shares files with the workspace or the store: $shared" >&2; exit 1; }

log "2/5 compile TypeScript to JavaScript, prune, stub the dev modules"
node "$ROOT/deploy/image/compile-tree.mjs" "$OUT"

log "3/5 proto sources for reflection"
proto_root="$(cd "$OUT" && node -e 'process.stdout.write(require("@sealpost/proto").PROTO_ROOT)')"
case "$proto_root" in "$OUT"/*) ;; *) echo "PROTO_ROOT $proto_root is outside $OUT" >&2; exit 1 ;; esac
mkdir -p "$proto_root"
(cd "$ROOT/proto" && find . -name '*.proto' -print0 | xargs -0 -I{} cp --parents {} "$proto_root/")

log "4/5 health check"
cp "$ROOT/deploy/healthcheck.mjs" "$OUT/healthcheck.mjs"
(cd "$OUT" && SERVICE="$SERVICE" node -e '
  const { SERVICE_GRPC_PORT, HEALTH_PORT_OFFSET, SERVICE_ENV_TOKEN } = require("@sealpost/config");
  const s = process.env.SERVICE;
  if (!(s in SERVICE_GRPC_PORT)) throw new Error(`${s} is not a service of @sealpost/config`);
  const image = { service: s, healthPort: SERVICE_GRPC_PORT[s] + HEALTH_PORT_OFFSET, healthAddrSetting: `SEALPOST_${SERVICE_ENV_TOKEN[s]}_HEALTH_ADDR` };
  require("node:fs").writeFileSync("image.json", JSON.stringify(image, null, 2) + "\n");
')

log "5/5 checks"
node "$ROOT/deploy/image/compile-tree.mjs" --check "$OUT"
log "done: $OUT ($(du -sh "$OUT" | cut -f1))"
