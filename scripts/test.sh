#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit tests, and the integration suite on SQLite and
# on PostgreSQL, with Redis. Uses TEST_DATABASE_URL / TEST_REDIS_URL when set, the services on
# their standard local ports when they answer, and otherwise starts throwaway instances on free
# ports in a temporary directory (installing Debian's packages first if they are missing) and
# removes them afterwards. GUILDHALL_TEST_ISOLATED=1 always starts throwaway instances.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/guildhall/target}"
export RUST_BACKTRACE="${RUST_BACKTRACE:-0}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

WORK="$(mktemp -d /tmp/guildhall-test.XXXXXX)"
chmod 755 "$WORK"
PG_STARTED="" REDIS_PID_FILE="" PG_BIN=""

log() { printf '==> %s\n' "$*" >&2; }

cleanup() {
  local code=$?
  if [ -n "$PG_STARTED" ]; then
    as_postgres "$PG_BIN/pg_ctl" -D "$WORK/pg" -m immediate stop >/dev/null 2>&1 || true
  fi
  if [ -n "$REDIS_PID_FILE" ] && [ -f "$REDIS_PID_FILE" ]; then
    kill "$(cat "$REDIS_PID_FILE")" 2>/dev/null || true
  fi
  drop_test_databases
  rm -rf "$WORK"
  exit $code
}
trap cleanup EXIT

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else log "need root to run: $*"; return 1; fi
}

APT_UPDATED=""
apt_install() {
  command -v apt-get >/dev/null 2>&1 || { log "cannot install $* (no apt-get)"; return 1; }
  if [ -z "$APT_UPDATED" ]; then as_root apt-get update -qq; APT_UPDATED=1; fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

free_port() {
  local p
  for _ in $(seq 1 100); do
    p=$(( (RANDOM % 30000) + 20000 ))
    port_open "$p" || { echo "$p"; return 0; }
  done
  log "no free port found"; return 1
}

# PostgreSQL refuses to run as root; run its tools as the `postgres` user when we are root.
as_postgres() {
  if [ "$(id -u)" = 0 ]; then
    if command -v runuser >/dev/null 2>&1; then runuser -u postgres -- "$@"
    else su postgres -s /bin/sh -c "$(printf '%q ' "$@")"; fi
  else "$@"; fi
}

redis_answers() {
  # PING over bash's /dev/tcp: no client needed.
  local host=$1 port=$2 reply=""
  # Braces: a redirection on a bare `exec` would apply to the rest of the script.
  { exec 3<>"/dev/tcp/$host/$port"; } 2>/dev/null || return 1
  printf 'PING\r\n' >&3
  read -r -t 2 reply <&3 || true
  exec 3>&- 3<&- || true
  [[ "$reply" == +PONG* ]]
}

pg_answers() {
  command -v psql >/dev/null 2>&1 || return 1
  psql "$1" -Atqc 'SELECT 1' >/dev/null 2>&1
}

drop_test_databases() {
  [ -n "${TEST_DATABASE_URL:-}" ] && [ -z "$PG_STARTED" ] && command -v psql >/dev/null 2>&1 || return 0
  psql "$TEST_DATABASE_URL" -Atqc "SELECT datname FROM pg_database WHERE datname LIKE 'gh\_test\_%'" 2>/dev/null |
    while read -r db; do psql "$TEST_DATABASE_URL" -qc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 || true; done
}

ensure_toolchain() {
  command -v cargo >/dev/null 2>&1 || { log "cargo is not installed (https://rustup.rs)"; exit 1; }
  command -v cc >/dev/null 2>&1 || { log "installing a C compiler for crates that build C"; apt_install gcc libc6-dev; }
  rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy rustfmt >/dev/null 2>&1 || true
}

ensure_postgres() {
  if [ -n "${TEST_DATABASE_URL:-}" ]; then log "PostgreSQL: using TEST_DATABASE_URL"; return; fi
  local local_url="postgres://postgres@127.0.0.1:5432/postgres"
  if [ -z "${GUILDHALL_TEST_ISOLATED:-}" ] && pg_answers "$local_url"; then
    export TEST_DATABASE_URL="$local_url"; log "PostgreSQL: using the local server on 5432"; return
  fi
  local initdb
  initdb=$(ls /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -n1 || true)
  if [ -z "$initdb" ]; then
    log "PostgreSQL: installing Debian's postgresql package"
    apt_install postgresql postgresql-client
    initdb=$(ls /usr/lib/postgresql/*/bin/initdb | sort -V | tail -n1)
  fi
  PG_BIN=$(dirname "$initdb")
  local port; port=$(free_port)
  mkdir -p "$WORK/pg" "$WORK/pgsock"
  [ "$(id -u)" = 0 ] && chown postgres "$WORK/pg" "$WORK/pgsock"
  as_postgres "$PG_BIN/initdb" -D "$WORK/pg" -U postgres --auth=trust -E UTF8 >/dev/null
  as_postgres "$PG_BIN/pg_ctl" -D "$WORK/pg" -l "$WORK/pgsock/pg.log" -w \
    -o "-p $port -k $WORK/pgsock -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=400" start >/dev/null
  PG_STARTED=1
  export TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres"
  log "PostgreSQL: started a throwaway server on port $port"
}

ensure_redis() {
  if [ -n "${TEST_REDIS_URL:-}" ]; then log "Redis: using TEST_REDIS_URL"; return; fi
  if [ -z "${GUILDHALL_TEST_ISOLATED:-}" ] && redis_answers 127.0.0.1 6379; then
    export TEST_REDIS_URL="redis://127.0.0.1:6379"; log "Redis: using the local server on 6379"; return
  fi
  command -v redis-server >/dev/null 2>&1 || { log "Redis: installing Debian's redis-server package"; apt_install redis-server; }
  local port; port=$(free_port)
  REDIS_PID_FILE="$WORK/redis.pid"
  redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
    --pidfile "$REDIS_PID_FILE" --dir "$WORK" --logfile "$WORK/redis.log"
  for _ in $(seq 1 50); do redis_answers 127.0.0.1 "$port" && break; sleep 0.1; done
  export TEST_REDIS_URL="redis://127.0.0.1:$port"
  log "Redis: started a throwaway server on port $port"
}

# The dashboard's browser flows (tests/integration/browser/) drive Debian's chromium through
# chromedriver; nothing downloads a browser of its own.
ensure_browser() {
  if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then return; fi
  log "installing chromium and chromium-driver for the browser tests"
  apt_install chromium chromium-driver
}

ensure_toolchain
ensure_postgres
ensure_redis
ensure_browser
export GUILDHALL_TEST_REQUIRE_SERVICES=1
# A missing browser is a failure here, not a skip.
export GUILDHALL_TEST_REQUIRE_BROWSER=1
export GUILDHALL_TEST_ARTIFACTS="${GUILDHALL_TEST_ARTIFACTS:-$CARGO_TARGET_DIR/test-artifacts}"

log "cargo fmt --check"
cargo fmt --all -- --check
log "cargo clippy --all-targets -- -D warnings"
cargo clippy --quiet --all-targets -- -D warnings
log "tests on SQLite (unit + integration)"
GUILDHALL_TEST_DB=sqlite cargo test --quiet
log "integration tests on PostgreSQL"
GUILDHALL_TEST_DB=postgres cargo test --quiet --test integration
if [ -x scripts/extra-checks.sh ]; then
  log "extra checks"
  scripts/extra-checks.sh
fi
log "all tests passed"
