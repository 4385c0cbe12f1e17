#!/usr/bin/env bash
# The main job on a fresh machine as root: set-up, then `tacmesh demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec node bin/tacmesh.js demo "$@"
