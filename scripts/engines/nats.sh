# shellcheck shell=bash
# nats: nats-server with JetStream, TLS only (a development CA), one user per service group.

NATS_PORT=${NATS_PORT:-4222}
NATS_HTTP_PORT=${NATS_HTTP_PORT:-8222}
NATS_DIR=$DATA/nats
NATS_CONF=$NATS_DIR/nats.conf
NATS_PID=$NATS_DIR/nats.pid
NATS_LOG=$LOG/nats.log
NATS_BIN=

nats_find_bin() {
  local p
  if p=$(command -v nats-server 2>/dev/null); then NATS_BIN=$p; return 0; fi
  for p in /usr/sbin/nats-server /usr/local/sbin/nats-server /usr/local/bin/nats-server; do
    if [[ -x $p ]]; then NATS_BIN=$p; return 0; fi
  done
  return 1
}

nats_pid() { pid_file_pid "$NATS_PID" nats-server; }
nats_running() { nats_pid >/dev/null; }

# Ports of the running server (from its config), else the requested ones.
nats_conf_port() {
  local key=$1 p=
  if nats_running && [[ -r $NATS_CONF ]]; then
    p=$(sed -nE "s/^${key}: *\"?127\.0\.0\.1:([0-9]+)\"?.*/\1/p" "$NATS_CONF" | head -n 1)
  fi
  echo "$p"
}
nats_port() { port_or "$(nats_conf_port listen)" "$NATS_PORT"; }
nats_http_port() { port_or "$(nats_conf_port http)" "$NATS_HTTP_PORT"; }

# Ready: the server we started answers its monitoring health check (else at least accepts TCP).
nats_healthy() {
  nats_running || return 1
  if command -v curl >/dev/null; then
    curl -sf -o /dev/null --max-time 2 "http://127.0.0.1:$1/healthz"
  else
    port_open "$1"
  fi
}

nats_install() {
  nats_find_bin && return 0
  need_packages "nats-server" nats-server
  nats_find_bin || die "nats-server installed but not found"
}

# A development CA and the server's certificate for 127.0.0.1 (made once): clients verify the server
# with $SECRETS/nats_ca.pem (NATS_CA_FILE); the CA's key never leaves $NATS_DIR/tls.
nats_tls() {
  local dir=$NATS_DIR/tls
  ( umask 077; mkdir -p "$dir" )
  [[ -s $dir/server.pem && -s $SECRETS/nats_ca.pem ]] && return 0
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 -subj "/CN=credit-mesh development CA" \
    -keyout "$dir/ca.key" -out "$dir/ca.pem" 2>/dev/null || die "nats: openssl could not make the development CA"
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=127.0.0.1" \
    -keyout "$dir/server.key" -out "$dir/server.csr" 2>/dev/null || die "nats: openssl could not make the server key"
  openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial -days 3650 -out "$dir/server.pem" \
    -extfile <(printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n') 2>/dev/null \
    || die "nats: openssl could not sign the server certificate"
  write_secret nats_ca.pem "$(cat "$dir/ca.pem")"
}

# The NATS permissions of a group's user on a server that every local namespace shares. Stream names
# carry the namespace, and NATS wildcards match whole tokens only, so here a rule names every stream of
# a kind; docker/nats.conf (one namespace) names each stream exactly. Everyone speaks Moleculer's
# protocol; only the groups that own streams (base-a: EVENTS, base-c, privacy) use JetStream's API (here
# all of it: namespaced names cannot be told apart; docker/nats.conf names each); a group publishes only
# into the streams it feeds (base-c-front alone into the movements').
nats_permissions() {
  local feeds_none='"*.transactions.>", "*.events.>", "*.privacy.>", "*.audit.>"'
  case $1 in
    api|operators) echo "publish: { deny: [\"\$JS.>\", $feeds_none] }, subscribe: { deny: [\"\$JS.>\", $feeds_none] }" ;;
    # Base A also owns EVENTS (its outbox relay and webhook fan-out: a durable consumer) and the audit
    # checkpoints' stream (docs/audit.md); here it may never delete or purge a stream or a message. Stream
    # names carry the namespace on a shared server, so updates cannot be denied for one stream: the stack's
    # docker/nats.conf names each allowed subject exactly (no update of the checkpoints there).
    base-a) echo "publish: { deny: [\"\$JS.API.STREAM.DELETE.>\", \"\$JS.API.STREAM.PURGE.>\", \"\$JS.API.STREAM.MSG.DELETE.>\", \"*.transactions.>\", \"*.privacy.>\"] }, subscribe: { deny: [$feeds_none] }" ;;
    base-b|report) echo "publish: { deny: [\"\$JS.>\", \"*.transactions.>\", \"*.privacy.>\", \"*.audit.>\"] }, subscribe: { deny: [$feeds_none] }" ;;
    # Base C's Elasticsearch side owns its streams but publishes no movement: only base-c-front does.
    base-c) echo "publish: { deny: [\"*.transactions.movement\", \"*.privacy.>\", \"*.audit.>\"] }, subscribe: { deny: [\"*.privacy.>\", \"*.audit.>\"] }" ;;
    # Base C's front (the pseudonym key): publishes pseudonymised movements and nothing else of JetStream.
    base-c-front) echo "publish: { deny: [\"\$JS.>\", \"*.transactions.dead\", \"*.transactions.dead.>\", \"*.events.>\", \"*.privacy.>\", \"*.audit.>\"] }, subscribe: { deny: [\"\$JS.>\", $feeds_none] }" ;;
    privacy) echo "publish: { deny: [\"*.transactions.>\", \"*.events.>\", \"*.audit.>\"] }, subscribe: { deny: [\"*.transactions.>\", \"*.events.>\", \"*.audit.>\"] }" ;;
  esac
}

# The part of every server's configuration that clients see: TLS with the development certificate and
# the users (one per service group, and `mesh` for a process that runs every group).
nats_client_conf() {
  local pw name users=""; pw=$(password nats_password)
  for name in $MESH_GROUPS; do
    users+="    { user: \"$name\", password: \"$(password "nats_password_$name")\", permissions: { $(nats_permissions "$name") } }"$'\n'
  done
  cat <<CONF
# Clients must speak TLS; they check the server against the development CA.
tls {
  cert_file: "$NATS_DIR/tls/server.pem"
  key_file: "$NATS_DIR/tls/server.key"
  timeout: 2
}
authorization {
  users: [
    # every group at once: npm start and the test process
    { user: "mesh", password: "$pw" }
$users  ]
}
CONF
}

# Check configuration $1.tmp with nats-server -t, then move it to $1.
nats_check_conf() {
  local out
  if ! out=$("$NATS_BIN" -c "$1.tmp" -t 2>&1); then
    warn "$out"
    die "nats: invalid configuration $1.tmp"
  fi
  mv -f "$1.tmp" "$1"
}

# Write $NATS_CONF for the given client and monitoring ports.
nats_write_conf() {
  ( umask 077; mkdir -p "$NATS_DIR/js" )
  chmod 700 "$NATS_DIR"
  nats_tls
  local common; common=$(nats_client_conf)
  ( umask 077
    cat >"$NATS_CONF.tmp" <<CONF
# Generated by scripts/engines.sh; do not edit (rewritten on every start).
server_name: credit_mesh_dev
listen: "127.0.0.1:$1"
http: "127.0.0.1:$2"
pid_file: "$NATS_PID"
max_payload: 8MB
jetstream {
  store_dir: "$NATS_DIR/js"
}
$common
CONF
  )
  nats_check_conf "$NATS_CONF"
}

nats_up() {
  ensure_dirs
  if nats_running; then
    local port http before
    port=$(nats_port); http=$(nats_http_port)
    say "nats: already running on 127.0.0.1:$port"
    note_port nats NATS_PORT "$port"
    # A password or a group was added or changed: reload the running server.
    before=$(cat "$NATS_CONF")
    nats_write_conf "$port" "$http"
    if [[ $before != "$(cat "$NATS_CONF")" ]]; then
      kill -HUP "$(nats_pid)"
      say "nats: configuration changed; reloaded"
    fi
    return 0
  fi
  need_free_ports nats ". Stop it or set NATS_PORT / NATS_HTTP_PORT." "$NATS_PORT" "$NATS_HTTP_PORT"
  rm -f "$NATS_PID"
  nats_write_conf "$NATS_PORT" "$NATS_HTTP_PORT"
  local rc=0
  launch "$NATS_DIR" "$NATS_LOG" nohup "$NATS_BIN" -c "$NATS_CONF"
  wait_ready "$WAIT_SECS" 0.2 "$LAUNCHER" nats_running nats_healthy "$NATS_HTTP_PORT" || rc=$?
  if (( rc == 0 )); then
    say "nats: started on nats://127.0.0.1:$NATS_PORT (monitor http://127.0.0.1:$NATS_HTTP_PORT, log $NATS_LOG)"
    return 0
  fi
  log_tail "$NATS_LOG"
  (( rc == 2 )) && die "nats: server exited during startup"
  die "nats: not healthy within ${WAIT_SECS}s (log: $NATS_LOG)"
}

nats_down() { stop_pid_file nats "$NATS_PID" nats-server "$WAIT_SECS"; }

nats_status() {
  if ! nats_find_bin; then say "nats      not installed"; return 0; fi
  if nats_running; then
    say "nats      running  nats://127.0.0.1:$(nats_port)  (monitor http://127.0.0.1:$(nats_http_port), pid $(nats_pid))"
  else
    say "nats      stopped  nats://127.0.0.1:$NATS_PORT"
  fi
}
