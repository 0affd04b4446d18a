#!/usr/bin/env bash
# Property-based API check: runs schemathesis (from PyPI) against /api/openapi.json of a real
# daemon, authenticated as an admin, and fails on any 5xx or any response that does not match
# the documented schema. The one 5xx allowed is the documented 503 of a Minecraft operation on
# a server the fuzzer created pointing nowhere (scripts/schemathesis_checks.py says why).
#
#   scripts/schemathesis.sh [extra schemathesis args…]
#
# Environment:
#   GUILDHALL_BIN            daemon binary to test (default: a debug build made with cargo)
#   CARGO_TARGET_DIR         where cargo builds (default ~/.cache/guildhall/target)
#   GUILDHALL_CACHE_DIR      where the schemathesis venv lives (default ~/.cache/guildhall)
#   SCHEMATHESIS_MAX_EXAMPLES  examples per operation (default 50)
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE="${GUILDHALL_CACHE_DIR:-$HOME/.cache/guildhall}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$CACHE/target}"
VENV="$CACHE/schemathesis-venv"
MAX_EXAMPLES="${SCHEMATHESIS_MAX_EXAMPLES:-50}"
SCHEMATHESIS_VERSION="4.*"

log() { printf '==> %s\n' "$*" >&2; }

if [ ! -x "$VENV/bin/schemathesis" ]; then
  log "installing schemathesis into $VENV"
  mkdir -p "$CACHE"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

BIN="${GUILDHALL_BIN:-}"
if [ -z "$BIN" ]; then
  # Always through cargo (a no-op when up to date): a binary found lying around may be older
  # than the sources.
  log "building the daemon (debug)"
  cargo build --quiet --bin guildhall
  BIN="$CARGO_TARGET_DIR/debug/guildhall"
fi

WORK="$(mktemp -d /tmp/guildhall-st.XXXXXX)"
PID=""
cleanup() {
  local code=$?
  if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
  exit $code
}
trap cleanup EXIT

PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
export GUILDHALL_DATA_DIR="$WORK/data" GUILDHALL_BIND="127.0.0.1:$PORT" RUST_LOG=warn
# One client sends everything: the per-IP limit would only produce 429s.
export GUILDHALL_RATE_LIMIT_PER_MINUTE=0
PASSWORD="schemathesis passphrase $(date +%s%N)"
"$BIN" migrate >/dev/null 2>&1
printf '%s' "$PASSWORD" | "$BIN" user create --username schemathesis --role admin --password-stdin >/dev/null 2>&1

"$BIN" serve >"$WORK/daemon.log" 2>&1 &
PID=$!
for _ in $(seq 1 300); do
  curl -fsS "http://127.0.0.1:$PORT/ready" >/dev/null 2>&1 && break
  kill -0 "$PID" 2>/dev/null || { log "daemon exited"; cat "$WORK/daemon.log" >&2; exit 1; }
  sleep 0.1
done

TOKEN="$(curl -fsS -H 'content-type: application/json' \
  -d "$(python3 -c 'import json,sys; print(json.dumps({"username":"schemathesis","password":sys.argv[1]}))' "$PASSWORD")" \
  "http://127.0.0.1:$PORT/api/v1/auth/login" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')"

log "schemathesis against http://127.0.0.1:$PORT/api/openapi.json ($MAX_EXAMPLES examples per operation)"
# Sign-out and MFA changes would revoke the token the run uses: they are covered by the
# integration suite instead.
# From the temporary directory, so schemathesis's .schemathesis/ cache stays out of the tree.
HOOKS="$PWD/scripts/schemathesis_checks.py"
(cd "$WORK" && SCHEMATHESIS_HOOKS="$HOOKS" "$VENV/bin/schemathesis" run "http://127.0.0.1:$PORT/api/openapi.json" \
  --header "Authorization: Bearer $TOKEN" \
  --checks no_server_error_but_an_unreachable_upstream,response_schema_conformance,content_type_conformance \
  --exclude-path /api/v1/auth/logout \
  --exclude-path-regex '^/api/v1/auth/(mfa/.*|password)$' \
  --max-examples "$MAX_EXAMPLES" \
  --no-color \
  --generation-with-security-parameters false \
  "$@")
# A handler error (500) is logged as "internal error"; actix's own complaints about malformed
# requests the fuzzer sends (bad header bytes) are not ours to fail on.
if grep -E 'ERROR.*(internal error|panicked)' "$WORK/daemon.log" >"$WORK/errors.log"; then
  log "the daemon logged internal errors during the run:"
  head -20 "$WORK/errors.log" >&2
  exit 1
fi
