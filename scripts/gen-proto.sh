#!/usr/bin/env bash
# Generates the TypeScript types of the wire schema (proto/) into src/proto/gen/. Generated,
# never committed: proto/ is the only definition. proto-loader-gen-types writes relative
# imports without extensions; ESM (NodeNext) wants ".js", so they are added here.
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf src/proto/gen
npx --no-install proto-loader-gen-types --longs=Number --enums=String --defaults --oneofs \
  --grpcLib=@grpc/grpc-js --outDir=src/proto/gen proto/tacmesh/v1/tower.proto >/dev/null
find src/proto/gen -name '*.ts' -exec sed -i -E "s#(from '\.{1,2}/[^']+)';#\1.js';#" {} +
