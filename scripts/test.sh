#!/usr/bin/env bash
# The whole test suite, on a fresh machine as root: set-up first, then node's test runner
# over every *.test.ts (the lint, format and type checks are tests too: test/project.test.ts).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
mapfile -t files < <(find src test -name '*.test.ts' | sort)
exec node --import tsx --test --test-reporter=spec --test-concurrency=1 "${files[@]}"
