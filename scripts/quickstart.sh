#!/usr/bin/env bash
# stella-oci quick start: start a local OCI registry, push the example mirror:full export,
# inspect it, pull it back, compare it file for file, and verify it by digest.
#
#   bash scripts/quickstart.sh
#
# Installs what is missing (the distribution registry from Debian's docker-registry package,
# a Python virtual environment in .venv with stella-oci), and cleans up after itself: the
# registry is stopped and its storage removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

if ! command -v docker-registry >/dev/null 2>&1 && [[ ! -x /usr/bin/docker-registry ]]; then
  say "installing the distribution registry (Debian package docker-registry)"
  SUDO=""
  [[ $(id -u) -eq 0 ]] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq docker-registry >/dev/null
fi
REGISTRY_BIN=$(command -v docker-registry || echo /usr/bin/docker-registry)

if [[ ! -x .venv/bin/stella-oci ]]; then
  say "installing stella-oci into .venv"
  "${PYTHON:-python3}" -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check -e .
fi
export PATH="$ROOT/.venv/bin:$PATH"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/stella-oci-quickstart.XXXXXX")
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
REGISTRY="127.0.0.1:$PORT"
cat >"$WORK/registry.yml" <<EOF
version: 0.1
log: {level: warn, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $WORK/storage}, delete: {enabled: true}}
http: {addr: $REGISTRY, secret: quickstart}
EOF
"$REGISTRY_BIN" serve "$WORK/registry.yml" >"$WORK/registry.log" 2>&1 &
REGISTRY_PID=$!
cleanup() {
  kill "$REGISTRY_PID" 2>/dev/null || true
  wait "$REGISTRY_PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
up=0
for _ in $(seq 1 200); do
  if python3 -c "import urllib.request; urllib.request.urlopen('http://$REGISTRY/v2/', timeout=1)" 2>/dev/null; then
    up=1
    break
  fi
  if ! kill -0 "$REGISTRY_PID" 2>/dev/null; then
    break # it exited: its log says why
  fi
  sleep 0.05
done
if [[ $up -ne 1 ]]; then
  echo "quickstart: the local registry did not answer http://$REGISTRY/v2/ within 10 s; its log:" >&2
  tail -n 20 "$WORK/registry.log" >&2 || true
  exit 1
fi
say "local registry up at $REGISTRY (storage $WORK/storage)"

REF="$REGISTRY/stellaops/exports:quickstart"
say "stella-oci push examples/mirror-full $REF"
# --digest-only: stdout is the digest; on failure the CLI's own message is on stderr and its
# exit code ends this script (set -e)
DIGEST=$(stella-oci push examples/mirror-full "$REF" --digest-only)
echo "pushed $REGISTRY/stellaops/exports@$DIGEST"

say "stella-oci inspect $REF"
stella-oci inspect "$REF"

say "stella-oci pull $REF --output pulled --expect-digest $DIGEST"
stella-oci pull "$REF" --output "$WORK/pulled" --expect-digest "$DIGEST" --ledger "$WORK/ledger.sqlite3"
diff -r examples/mirror-full "$WORK/pulled"
echo "the pulled bundle equals examples/mirror-full, file for file"

say "stella-oci verify $REGISTRY/stellaops/exports@$DIGEST"
stella-oci verify "$REGISTRY/stellaops/exports@$DIGEST" --quiet

say "quick start done: pushed, pulled and verified $DIGEST"
