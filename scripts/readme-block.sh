#!/usr/bin/env bash
# Prints the README code block that follows the marker `<!-- check: NAME ... -->`, so the test
# script can run a README step exactly as a reader would paste it. Fails when there is none.
set -euo pipefail
cd "$(dirname "$0")/.."
name="${1:?usage: scripts/readme-block.sh NAME}"
block=$(awk -v name="$name" '
  $0 ~ "^<!-- check: " name "( |-->)" { marked = 1; next }
  marked && /^```/ && !inside { inside = 1; next }
  inside && /^```/ { exit }
  inside { print }
' README.md)
[ -n "$block" ] || { echo "README.md has no block marked check: $name" >&2; exit 1; }
printf '%s\n' "$block"
