#!/usr/bin/env bash
# The whole test suite, as the README runs it: system packages the tests drive, lint and format,
# a build, every tap test, and a closing line "N passed, N failed, N skipped".
set -uo pipefail
cd "$(dirname "$0")/.."

bash scripts/system-deps.sh || { echo "0 passed, 1 failed"; exit 1; }
npm run --silent build || { echo "build failed"; echo "0 passed, 1 failed"; exit 1; }

# Lint and format are part of the suite: each that fails counts as one failed test.
style_fail=0
npx biome lint --diagnostic-level=error || { echo "lint failed: see above (npm run lint)" >&2; style_fail=$((style_fail + 1)); }
npx biome format || { echo "format check failed: run 'npm run format'" >&2; style_fail=$((style_fail + 1)); }

out=$(mktemp)
trap 'rm -f "$out"' EXIT
# Test files run two at a time (the machine has two cores); each has its own
# ephemeral ports and temp dirs, so they never collide.
npx tap --disable-coverage --reporter=tap --jobs=2 --timeout=180 "dist/test/**/*.test.js" "$@" 2>&1 | tee "$out"
status=${PIPESTATUS[0]}

# tap ends with a comment like "# { total: 12, pass: 11, fail: 1, skip: 0 }".
summary=$(grep -E '^# \{ total: ' "$out" | tail -1)
num() { echo "$summary" | grep -oE "$1: [0-9]+" | grep -oE '[0-9]+' || echo 0; }
pass=$(num pass); fail=$(num fail); skip=$(num skip); todo=$(num todo)
if [ -z "$summary" ]; then fail=$((fail + 1)); fi
fail=$((fail + style_fail))
if [ "$status" -ne 0 ] && [ "$fail" -eq 0 ]; then fail=1; fi
if [ "${CI:-}" = "true" ] && [ "$skip" -gt 0 ]; then
  echo "CI=true: $skip test(s) were skipped; every test must run in CI" >&2
  fail=$((fail + skip))
fi
echo "$pass passed, $fail failed, $((skip + todo)) skipped"
[ "$fail" -eq 0 ]
