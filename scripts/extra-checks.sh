#!/usr/bin/env bash
# Checks beyond `cargo test`, run by scripts/test.sh after the suites: schemathesis against the
# OpenAPI document of a running daemon, and the deployment checks (scripts/deploy-checks.sh:
# Nix, Prometheus rules, the systemd unit, nginx and an end-to-end run behind nginx). Installs what it needs from Debian's packages when
# missing (python3 with venv, curl).
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else echo "need root to run: $*" >&2; return 1; fi
}
need=()
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v python3 >/dev/null 2>&1 || need+=(python3)
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || need+=(python3-venv)
if [ ${#need[@]} -gt 0 ]; then
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# The debug binary the test suites just built.
export GUILDHALL_BIN="${GUILDHALL_BIN:-${CARGO_TARGET_DIR:-$HOME/.cache/guildhall/target}/debug/guildhall}"
scripts/schemathesis.sh
scripts/deploy-checks.sh
