#!/usr/bin/env bash
# Deployment checks that run without NixOS, without network and without nixpkgs (called by
# scripts/extra-checks.sh, so by scripts/test.sh):
#   - Nix: every .nix file parses (Debian's nix-bin); the module's assertions evaluate against a
#     stand-in `lib` (nix/tests/assertions.nix); nixpkgs-fmt and deadnix in check mode
#     (crates.io, installed once into /var/cache/guildhall-ci/tools);
#   - Prometheus: `promtool check rules` and `promtool test rules`;
#   - systemd: `systemd-analyze verify` and `systemd-analyze security --offline=true` on
#     deploy/systemd/guildhall.service (the exposure must stay at or below EXPOSURE_MAX);
#   - nginx: `nginx -t` on deploy/nginx/guildhall.conf with a throwaway self-signed certificate;
#   - scripts/nginx-e2e.sh: a real nginx in front of a real guildhall on loopback.
# What cannot run here (no NixOS VM, no nixpkgs): `nix flake check`, the VM tests, `nix build`.
# Installs Debian's packages when missing. GUILDHALL_BIN: the daemon to test (default: the
# debug build in CARGO_TARGET_DIR).
set -euo pipefail
cd "$(dirname "$0")/.."

# The documented exposure of the unit (docs/deployment.md); a change that weakens the sandbox
# fails here.
EXPOSURE_MAX=1.1
TOOLS="${GUILDHALL_TOOLS:-/var/cache/guildhall-ci/tools}"
NIXPKGS_FMT_VERSION=1.3.0
DEADNIX_VERSION=1.3.1

log() { printf '==> deploy: %s\n' "$*" >&2; }
as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else log "need root to run: $*"; return 1; fi
}

need=()
command -v nix-instantiate >/dev/null 2>&1 || need+=(nix-bin)
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
[ -x /usr/sbin/nginx ] || command -v nginx >/dev/null 2>&1 || need+=(nginx)
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v python3 >/dev/null 2>&1 || need+=(python3)
if [ ${#need[@]} -gt 0 ]; then
  log "installing Debian packages: ${need[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  # Where systemd runs, the packages start their servers; only their tools are wanted here.
  if [[ " ${need[*]} " == *" prometheus "* ]] && command -v systemctl >/dev/null 2>&1; then
    as_root systemctl disable --now prometheus prometheus-node-exporter >/dev/null 2>&1 || true
  fi
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

# --- Nix ------------------------------------------------------------------------------------
# Nix 2.x from Debian warns about a build group that does not exist; nothing is built here.
export NIX_CONFIG="build-users-group ="
mapfile -t nix_files < <(git ls-files --cached --others --exclude-standard '*.nix' 2>/dev/null || find . -name '*.nix' -not -path './target/*')
[ ${#nix_files[@]} -gt 0 ] || { log "no .nix files found"; exit 1; }
log "nix-instantiate --parse on ${#nix_files[@]} files"
for f in "${nix_files[@]}"; do
  nix-instantiate --parse "$f" >/dev/null
done

log "module assertions (nix/tests/assertions.nix, stand-in lib)"
result=$(nix-instantiate --eval --strict nix/tests/assertions.nix)
if [ "$result" != "[ ]" ]; then
  log "module assertion cases failed: $result"; exit 1
fi

install_tool() { # crate version binary
  if [ ! -x "$TOOLS/bin/$3" ]; then
    log "installing $1 $2 from crates.io into $TOOLS"
    CARGO_TARGET_DIR="$TOOLS/build" cargo install --quiet --locked --root "$TOOLS" --version "$2" "$1"
  fi
}
install_tool nixpkgs-fmt "$NIXPKGS_FMT_VERSION" nixpkgs-fmt
install_tool deadnix "$DEADNIX_VERSION" deadnix
log "nixpkgs-fmt --check, deadnix --fail"
"$TOOLS/bin/nixpkgs-fmt" --check "${nix_files[@]}"
"$TOOLS/bin/deadnix" --fail "${nix_files[@]}"

# --- Prometheus -----------------------------------------------------------------------------
log "promtool check rules / test rules"
promtool check rules monitoring/prometheus/rules.yml >/dev/null
promtool test rules monitoring/prometheus/rules.test.yml >/dev/null

# --- systemd --------------------------------------------------------------------------------
WORK=$(mktemp -d /tmp/guildhall-deploy.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
export GUILDHALL_BIN="${GUILDHALL_BIN:-${CARGO_TARGET_DIR:-$HOME/.cache/guildhall/target}/debug/guildhall}"
[ -x "$GUILDHALL_BIN" ] || { log "no guildhall binary at $GUILDHALL_BIN (build it first)"; exit 1; }
# The unit names /usr/local/bin/guildhall; verify checks that its programs exist.
sed "s|/usr/local/bin/guildhall|$GUILDHALL_BIN|g" deploy/systemd/guildhall.service >"$WORK/guildhall.service"
log "systemd-analyze verify"
verify_out=$(systemd-analyze verify "$WORK/guildhall.service" 2>&1) || { echo "$verify_out"; exit 1; }
# verify exits 0 on some warnings; any line naming the unit is a problem in it.
if grep -q 'guildhall.service' <<<"$verify_out"; then echo "$verify_out"; exit 1; fi
log "systemd-analyze security --offline=true"
security_out=$(systemd-analyze security --offline=true --no-pager "$WORK/guildhall.service" 2>&1)
exposure=$(sed -n 's/.*Overall exposure level for guildhall.service: \([0-9.]*\).*/\1/p' <<<"$security_out")
[ -n "$exposure" ] || { echo "$security_out"; log "no exposure score found"; exit 1; }
log "exposure $exposure (documented maximum $EXPOSURE_MAX)"
awk -v e="$exposure" -v m="$EXPOSURE_MAX" 'BEGIN { exit !(e <= m) }' || {
  grep '✗' <<<"$security_out" || true
  log "the unit's exposure $exposure is above $EXPOSURE_MAX"; exit 1
}

# --- nginx ----------------------------------------------------------------------------------
log "nginx -t on deploy/nginx/guildhall.conf"
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost \
  -addext subjectAltName=DNS:localhost -keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2>/dev/null
sed -e "s|/etc/letsencrypt/live/guildhall.example.org/fullchain.pem|$WORK/cert.pem|" \
    -e "s|/etc/letsencrypt/live/guildhall.example.org/privkey.pem|$WORK/key.pem|" \
    deploy/nginx/guildhall.conf >"$WORK/site.conf"
cat >"$WORK/nginx.conf" <<EOF
pid $WORK/nginx.pid;
error_log $WORK/error.log;
events {}
http {
  access_log off;
  client_body_temp_path $WORK/body;
  proxy_temp_path $WORK/proxy;
  include $WORK/site.conf;
}
EOF
"$NGINX" -t -q -p "$WORK" -c "$WORK/nginx.conf"

# --- end to end -----------------------------------------------------------------------------
scripts/nginx-e2e.sh
log "all deployment checks passed"
