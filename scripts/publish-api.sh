#!/usr/bin/env bash
# Renews proto/published.binpb, the image of the API callers have generated stubs from, which
# scripts/test.sh checks every change against (buf breaking). Run it only on purpose: when a
# breaking change is intended (a new major version), or to take in additions once released.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! [ -x .tools/node_modules/.bin/buf ]; then
  npm install --silent --no-audit --no-fund --prefix .tools @bufbuild/buf@1 >/dev/null
fi
.tools/node_modules/.bin/buf build --exclude-source-info -o proto/published.binpb
echo "proto/published.binpb renewed; commit it with a message saying why"
