#!/usr/bin/env bash
# A real nginx (Debian's) with deploy/nginx/guildhall.conf in front of a real guildhall, all on
# loopback: sign-in, an API call and a /ws/logs stream go through it. The client speaks from
# 127.0.0.2 while nginx reaches guildhall from 127.0.0.1, so the audit log proves that the
# forwarded address (and not the proxy's, nor a forged header) is recorded; the WebSocket
# same-origin check must accept the page's own origin through the proxy and refuse another.
# Called by scripts/deploy-checks.sh; GUILDHALL_BIN is the daemon to test.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '==> nginx-e2e: %s\n' "$*" >&2; }
fail() { log "FAILED: $*"; [ -f "${WORK:-/nonexistent}/guildhall.log" ] && tail -n 20 "$WORK/guildhall.log" >&2; exit 1; }

GUILDHALL_BIN="${GUILDHALL_BIN:?set GUILDHALL_BIN to the daemon binary}"
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
WORK=$(mktemp -d /tmp/guildhall-e2e.XXXXXX)
chmod 0755 "$WORK"
GH_PID=""
cleanup() {
  [ -f "$WORK/nginx.pid" ] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null || true
  [ -n "$GH_PID" ] && kill "$GH_PID" 2>/dev/null && wait "$GH_PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() {
  local p
  for _ in $(seq 1 100); do
    p=$(( (RANDOM % 20000) + 30000 ))
    port_open "$p" || { echo "$p"; return 0; }
  done
  return 1
}
APP_PORT=$(free_port); HTTP_PORT=$(free_port); HTTPS_PORT=$(free_port)
ORIGIN="https://localhost:$HTTPS_PORT"

# --- guildhall, trusting only the local nginx --------------------------------------------------
export GUILDHALL_BIND="127.0.0.1:$APP_PORT" GUILDHALL_DATA_DIR="$WORK/data"
export GUILDHALL_TRUSTED_PROXIES="127.0.0.1,::1" LOG_FORMAT=json RUST_LOG=info
export GUILDHALL_RATE_LIMIT_PER_MINUTE=600
unset DATABASE_URL REDIS_URL DISCORD_TOKEN RCON_HOST GUILDHALL_CONFIG 2>/dev/null || true
"$GUILDHALL_BIN" migrate >/dev/null 2>&1 || fail "guildhall migrate"
PASSWORD="e2e operator password 2468"
printf '%s\n' "$PASSWORD" | "$GUILDHALL_BIN" user create --username ops --role admin --password-stdin \
  >/dev/null 2>&1 || fail "guildhall user create"
"$GUILDHALL_BIN" serve >"$WORK/guildhall.log" 2>&1 &
GH_PID=$!
for _ in $(seq 1 100); do port_open "$APP_PORT" && break; sleep 0.1; done
port_open "$APP_PORT" || fail "guildhall did not start"

# --- nginx with the shipped site, on free ports and a throwaway certificate --------------------
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost \
  -addext subjectAltName=DNS:localhost -keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2>/dev/null
sed -e "s|/etc/letsencrypt/live/guildhall.example.org/fullchain.pem|$WORK/cert.pem|" \
    -e "s|/etc/letsencrypt/live/guildhall.example.org/privkey.pem|$WORK/key.pem|" \
    -e "s|server 127.0.0.1:8080;|server 127.0.0.1:$APP_PORT;|" \
    -e "s|listen 80;|listen 127.0.0.1:$HTTP_PORT;|" -e "/listen \[::\]:80;/d" \
    -e "s|listen 443 ssl http2;|listen 127.0.0.1:$HTTPS_PORT ssl http2;|" -e "/listen \[::\]:443/d" \
    -e "s|guildhall.example.org|localhost|g" \
    deploy/nginx/guildhall.conf >"$WORK/site.conf"
grep -q "127.0.0.1:$APP_PORT" "$WORK/site.conf" || fail "the site's upstream was not rewritten"
cat >"$WORK/nginx.conf" <<EOF
pid $WORK/nginx.pid;
error_log $WORK/error.log;
daemon on;
events {}
http {
  access_log off;
  client_body_temp_path $WORK/body;
  proxy_temp_path $WORK/proxy;
  include $WORK/site.conf;
}
EOF
"$NGINX" -p "$WORK" -c "$WORK/nginx.conf" || fail "nginx did not start"
for _ in $(seq 1 50); do port_open "$HTTPS_PORT" && break; sleep 0.1; done

CURL=(curl -sS --max-time 10 --interface 127.0.0.2 --cacert "$WORK/cert.pem")

# --- HTTP redirects to HTTPS ------------------------------------------------------------------
code=$("${CURL[@]}" -o /dev/null -w '%{http_code}' "http://localhost:$HTTP_PORT/")
[ "$code" = 301 ] || fail "plain HTTP answered $code, not a redirect"

# --- sign-in through nginx: the session cookie is Secure (HTTPS at the proxy) -----------------
"${CURL[@]}" -D "$WORK/login.headers" -o "$WORK/login.json" -H 'content-type: application/json' \
  -d "{\"username\":\"ops\",\"password\":\"$PASSWORD\"}" "$ORIGIN/api/v1/auth/login"
grep -q '^HTTP/[0-9.]* 200' "$WORK/login.headers" || fail "sign-in: $(head -n1 "$WORK/login.headers")"
cookie_line=$(grep -i '^set-cookie: guildhall_session=' "$WORK/login.headers" | head -n1 | tr -d '\r')
[ -n "$cookie_line" ] || fail "no session cookie"
grep -qi 'secure' <<<"$cookie_line" || fail "the session cookie is not Secure behind TLS (attributes: ${cookie_line#*;})"
SESSION=$(sed -E 's/^[Ss]et-[Cc]ookie: (guildhall_session=[^;]*).*/\1/' <<<"$cookie_line")
TOKEN=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["access_token"])' "$WORK/login.json")

# --- a failed sign-in with a forged X-Forwarded-For, then the audit log through the API --------
code=$("${CURL[@]}" -o /dev/null -w '%{http_code}' -H 'content-type: application/json' \
  -H 'x-forwarded-for: 6.6.6.6' -d '{"username":"ops","password":"wrong"}' "$ORIGIN/api/v1/auth/login")
[ "$code" = 401 ] || fail "a wrong password answered $code"
ip=""
for _ in $(seq 1 50); do
  "${CURL[@]}" -o "$WORK/audit.json" -H "authorization: Bearer $TOKEN" \
    "$ORIGIN/api/v1/audit?action=auth.login_failed"
  ip=$(python3 -c 'import json,sys; e=json.load(open(sys.argv[1]))["entries"]; print(e[0]["ip"] if e else "")' "$WORK/audit.json")
  [ -n "$ip" ] && break
  sleep 0.1
done
[ "$ip" = "127.0.0.2" ] || fail "the audit log recorded '$ip', not the client's 127.0.0.2"
log "audit log: the failed sign-in came from $ip (client), not 127.0.0.1 (nginx) nor 6.6.6.6 (forged)"

# --- /metrics is not proxied ------------------------------------------------------------------
code=$("${CURL[@]}" -o /dev/null -w '%{http_code}' "$ORIGIN/metrics")
[ "$code" = 404 ] || fail "/metrics through nginx answered $code"

# --- /ws/logs through nginx: same origin streams, another origin is refused -------------------
python3 - "$HTTPS_PORT" "$WORK/cert.pem" "$SESSION" "$ORIGIN" <<'PY' || fail "WebSocket checks"
import base64, os, socket, ssl, sys

port, cafile, cookie, origin = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
ctx = ssl.create_default_context(cafile=cafile)
ctx.set_alpn_protocols(["http/1.1"])

def handshake(origin_header):
    raw = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=("127.0.0.2", 0))
    conn = ctx.wrap_socket(raw, server_hostname="localhost")
    key = base64.b64encode(os.urandom(16)).decode()
    conn.sendall((
        f"GET /ws/logs HTTP/1.1\r\nHost: localhost:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        f"Origin: {origin_header}\r\nCookie: {cookie}\r\n\r\n"
    ).encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = conn.recv(4096)
        if not chunk:
            break
        head += chunk
    status = int(head.split(b" ", 2)[1])
    return conn, status, head.split(b"\r\n\r\n", 1)[1]

def read_frame(conn, buffered):
    data = bytearray(buffered)
    def need(n):
        while len(data) < n:
            chunk = conn.recv(65536)
            if not chunk:
                raise SystemExit("stream closed before a frame arrived")
            data.extend(chunk)
    need(2)
    opcode, length, at = data[0] & 0x0F, data[1] & 0x7F, 2
    if length == 126:
        need(4); length, at = int.from_bytes(data[2:4], "big"), 4
    elif length == 127:
        need(10); length, at = int.from_bytes(data[2:10], "big"), 10
    need(at + length)
    return opcode, bytes(data[at:at + length])

conn, status, rest = handshake(origin)
if status != 101:
    raise SystemExit(f"same-origin /ws/logs through nginx answered {status}, not 101")
# The backlog of log lines arrives first: at least one text frame.
opcode, payload = read_frame(conn, rest)
if opcode != 1 or not payload.startswith(b"{"):
    raise SystemExit(f"expected a JSON text frame, got opcode {opcode}: {payload[:80]!r}")
conn.close()

conn, status, _ = handshake("https://evil.example")
conn.close()
if status != 403:
    raise SystemExit(f"a foreign Origin through nginx answered {status}, not 403")
print("==> nginx-e2e: /ws/logs streams for the same origin and refuses another", file=sys.stderr)
PY

log "sign-in, API call, audit address, /metrics and /ws/logs through nginx are right"
