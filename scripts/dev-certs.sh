#!/usr/bin/env bash
# A throwaway CA, a server certificate for localhost/127.0.0.1 and a client certificate carrying a
# SPIFFE id, for trying mTLS locally (openssl). Usage: scripts/dev-certs.sh [DIR]  (default: ./dev-certs)
set -euo pipefail
dir="${1:-dev-certs}"
mkdir -p "$dir" && cd "$dir"
spiffe="spiffe://example.test/ns/platform/sa/control-plane"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 7 \
  -subj "/CN=cloudtrail-gateway dev CA" -keyout ca.key -out ca.pem 2>/dev/null
issue() { # name subject extensions
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "$2" -keyout "$1.key" -out "$1.csr" 2>/dev/null
  printf '%s\n' "$3" > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 7 -extfile "$1.ext" -out "$1.pem" 2>/dev/null
  rm -f "$1.csr" "$1.ext"
}
issue server "/CN=localhost" "subjectAltName=DNS:localhost,IP:127.0.0.1"
issue client "/CN=control-plane" "subjectAltName=URI:$spiffe"
echo "wrote $(pwd)/{ca,server,client}.{pem,key}; client identity: $spiffe"
