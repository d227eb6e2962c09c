#!/usr/bin/env bash
# Mints a throwaway RSA key, its JWKS (dev-jwt/jwks.json) and a JWT signed with it, so the JWT path
# can be tried offline:
#   scripts/dev-jwt.sh [SUBJECT] [ROLES] [SECONDS]     (defaults: alice, "operator", 3600)
#   cargo run --release -- --jwks-file dev-jwt/jwks.json --jwt-issuer https://dev.local \
#     --jwt-audience cloudtrail-gateway
#   grpcurl -plaintext -H "authorization: Bearer $(cat dev-jwt/token)" 127.0.0.1:50051 ...
# The key is made once and kept in dev-jwt/ (remove the folder for a new one); each run mints a new
# token. Needs openssl and coreutils' basenc. For local trials only.
set -euo pipefail
cd "$(dirname "$0")/.."
subject="${1:-alice}"
roles="${2:-operator}"
lifetime="${3:-3600}"
dir="${DEV_JWT_DIR:-dev-jwt}"  # DEV_JWT_DIR: elsewhere (the tests)
mkdir -p "$dir"
if [ ! -f "$dir/key.pem" ]; then
  openssl genrsa -out "$dir/key.pem" 2048 2>/dev/null
  chmod 600 "$dir/key.pem"
fi
b64url() { basenc --base64url -w0 | tr -d '='; }
modulus=$(openssl rsa -in "$dir/key.pem" -noout -modulus | cut -d= -f2 | xxd -r -p | b64url)
kid=$(printf %s "$modulus" | sha256sum | cut -c1-16)
printf '{"keys":[{"kty":"RSA","use":"sig","alg":"RS256","kid":"%s","n":"%s","e":"AQAB"}]}\n' \
  "$kid" "$modulus" > "$dir/jwks.json"
now=$(date +%s)
roles_json=$(printf '%s' "$roles" | awk '{for (i = 1; i <= NF; i++) printf "%s\"%s\"", (i > 1 ? "," : ""), $i}')
header=$(printf '{"alg":"RS256","typ":"JWT","kid":"%s"}' "$kid" | b64url)
claims=$(printf '{"iss":"https://dev.local","aud":"cloudtrail-gateway","sub":"%s","roles":[%s],"iat":%d,"exp":%d}' \
  "$subject" "$roles_json" "$now" "$((now + lifetime))" | b64url)
signature=$(printf '%s.%s' "$header" "$claims" | openssl dgst -sha256 -sign "$dir/key.pem" -binary | b64url)
printf '%s.%s.%s\n' "$header" "$claims" "$signature" > "$dir/token"
cat "$dir/token"
