#!/usr/bin/env bash
# Offline checks of the deployment files (k8s/, deploy/). No cluster and no network beyond the Go module
# proxy for the first kustomize build; nothing is downloaded at run time after that.
#
#   bash scripts/k8s-check.sh            install kustomize if needed, render every overlay, run deploy/test
#   bash scripts/k8s-check.sh render     only render the overlays into $SEALPOST_TEST_K8S_OUT (default: a temp
#                                        dir), and run kube-linter on them if it is installed (3. below)
#
# 1. `kustomize build` of k8s/base and of every k8s/overlays/* (a build error fails the check).
# 2. jest over deploy/test (the same suites the full test run includes):
#    - every rendered object of both overlays validated against the Kubernetes OpenAPI schemas shipped by
#      the npm package kubernetes-models (compiled validators: required fields, types, enums) and against
#      its TypeScript types with excess-property checks (unknown or misspelt fields);
#    - kube-linter's default checks (and the extra ones k8s/.kube-linter.yaml includes), reimplemented as
#      tests in deploy/test/lib/k8s-rules.ts, each with a negative test on a bad manifest;
#    - restricted pod security, probes, resources, IRSA, secrets-as-files and NetworkPolicy coverage of
#      every workload in the rendered prod overlay, the service-to-service gRPC flows of the access table
#      (admitted at both ends, nothing else), plus negative tests on mutated objects;
#    - the production settings of every container load with @sealpost/config in production mode;
#    - compose.yaml structure, NATS values vs renderNatsPermissions, dashboards/alerts vs METRIC_NAMES.
# 3. kube-linter ITSELF IS NOT SERVED HERE: `go list -m -versions golang.stackrox.io/kube-linter` answers
#    "403 Forbidden" from proxy.golang.org, and github.com/stackrox/kube-linter is refused too, so it cannot be
#    built and the tests of 2. stand in for it. If a `kube-linter` binary is on PATH or in the peers cache
#    ($BIN/kube-linter), it is run as well on the rendered overlays with k8s/.kube-linter.yaml (default checks
#    plus a few extra ones, no exclusions), and any finding fails the check. Without one, a line says so.
#
# kustomize is built from the Go module proxy into the same cache scripts/peers.sh uses:
#   ${SEALPOST_PEERS_CACHE:-$HOME/.cache/sealpost-peers}/bin/kustomize  (stamp file .kustomize.version)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE_DIR="${SEALPOST_PEERS_CACHE:-$HOME/.cache/sealpost-peers}"
BIN="$CACHE_DIR/bin"
# v5.8.1 builds with the machine's Go 1.26; v5.8.3's kustomize/api v0.21.3 would need GOTOOLCHAIN=go1.27.3.
KUSTOMIZE_SPEC="sigs.k8s.io/kustomize/kustomize/v5@v5.8.1"

log() { printf '[k8s-check] %s\n' "$*" >&2; }

ensure_kustomize() {
  if [[ -x "$BIN/kustomize" && "$(cat "$BIN/.kustomize.version" 2>/dev/null)" == "$KUSTOMIZE_SPEC" ]]; then
    return 0
  fi
  [[ -d /usr/local/go/bin ]] && export PATH="/usr/local/go/bin:$PATH"
  command -v go >/dev/null || { log "go is required to build kustomize (apt-get install golang-go)"; exit 1; }
  mkdir -p "$BIN" "$CACHE_DIR/logs"
  log "building kustomize from $KUSTOMIZE_SPEC (log: $CACHE_DIR/logs/build-kustomize.log)"
  if ! env GOBIN="$BIN" GOFLAGS=-trimpath go install "$KUSTOMIZE_SPEC" >"$CACHE_DIR/logs/build-kustomize.log" 2>&1; then
    tail -n 20 "$CACHE_DIR/logs/build-kustomize.log" >&2
    log "building kustomize FAILED"
    exit 1
  fi
  echo "$KUSTOMIZE_SPEC" >"$BIN/.kustomize.version"
}

# kube-linter when a binary exists (see 3. in the header); the stand-in tests run either way.
kube_linter() {
  local out="$1" bin
  bin="$(command -v kube-linter || true)"
  [[ -z "$bin" && -x "$BIN/kube-linter" ]] && bin="$BIN/kube-linter"
  if [[ -z "$bin" ]]; then
    log "kube-linter not installed (not served by the Go module proxy here): its checks run as tests in deploy/test"
    return 0
  fi
  local files=()
  for dir in "$ROOT"/k8s/overlays/*/; do files+=("$out/$(basename "$dir").yaml"); done
  if "$bin" lint --config "$ROOT/k8s/.kube-linter.yaml" "${files[@]}" >&2; then
    log "kube-linter ($bin) ok on ${#files[@]} overlays"
  else
    log "kube-linter ($bin) FAILED"
    return 1
  fi
}

render() {
  local out="$1" failed=0
  mkdir -p "$out"
  for dir in "$ROOT/k8s/base" "$ROOT"/k8s/overlays/*/; do
    local name
    name="$(basename "$dir")"
    if "$BIN/kustomize" build "$dir" >"$out/$name.yaml" 2>"$out/$name.err"; then
      log "kustomize build k8s/${dir#"$ROOT/k8s/"} ok ($(grep -c '^kind:' "$out/$name.yaml") objects)"
    else
      log "kustomize build $dir FAILED:"
      sed 's/^/    /' "$out/$name.err" >&2
      failed=1
    fi
  done
  return "$failed"
}

main() {
  ensure_kustomize
  OUT="${SEALPOST_TEST_K8S_OUT:-}"
  if [[ -z "$OUT" ]]; then
    OUT="$(mktemp -d)"
    # Rendered output is kept only when asked for (`render`); the tests render again themselves.
    [[ "${1:-}" == "render" ]] || trap 'rm -rf "$OUT"' EXIT
  fi
  render "$OUT"
  kube_linter "$OUT"
  [[ "${1:-}" == "render" ]] && { log "rendered into $OUT"; return 0; }
  cd "$ROOT"
  SEALPOST_TEST_KUSTOMIZE="$BIN/kustomize" pnpm exec jest --ci deploy/test
}

main "$@"
