#!/usr/bin/env bash
# Regenerates TypeScript from proto/ with ts-proto (through buf, which ships inside its npm package and
# needs no network). The output is committed; .ci/run fails when regeneration changes it.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out="$root/packages/proto/src/gen"
rm -rf "$out"
mkdir -p "$out"
cd "$root/proto"
"$root/node_modules/.bin/buf" lint
"$root/node_modules/.bin/buf" generate
# Every generated file starts with the ts-proto "DO NOT EDIT" header; prettier keeps diffs stable.
"$root/node_modules/.bin/prettier" --log-level warn --write "$out"
echo "generated $(find "$out" -name '*.ts' | wc -l) files into packages/proto/src/gen"
