#!/usr/bin/env bash
# Start/stop the local engines credit-mesh needs, without Docker.
#
#   bash scripts/engines.sh up     [engine...]   start (installing/initialising when needed)
#   bash scripts/engines.sh down   [engine...]   stop
#   bash scripts/engines.sh status               one line per engine
#   bash scripts/engines.sh pid    <engine>      pid of the running server (exit 1 if not running)
#   bash scripts/engines.sh env    [dev|test] [--group NAME]   export lines: eval "$(bash scripts/engines.sh env)";
#                                  --group: the settings of one service group's process (its mesh key only)
#
# Engines: see ENGINES below (no argument = all). Everything lives under
# $CREDIT_MESH_DATA (default: <repo>/.data): data, logs, pid files, dev secrets.
# Servers listen on 127.0.0.1 only. Ports: PGPORT (5432), NATS_PORT (4222),
# NATS_HTTP_PORT (8222), MONGO_PORT (27017), ES_PORT (9200), ES_TRANSPORT_PORT (9300).
#
# mongo = FerretDB v1.24.2 (MongoDB wire protocol, Base B) storing into the
# PostgreSQL cluster, built with Go (>= the go line of engines/ferretdb/go.mod;
# /usr/local/go/bin is used when present) into $DATA/bin/ferretdb.
#
# elasticsearch (or es) = Elasticsearch 8.19.21 (Base C) from Maven Central (mvn) on the
# system JDK 17, run as the system user credit-es when we are root; security off,
# 127.0.0.1 only (see its section below). Heap: ES_HEAP (1g).
#
# Adding an engine: append its name to ENGINES and define
# <engine>_install, <engine>_up, <engine>_down and <engine>_status.
set -euo pipefail

ENGINES="postgres mongo nats elasticsearch"

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
DATA=${CREDIT_MESH_DATA:-$ROOT/.data}
case $DATA in /*) ;; *) DATA=$PWD/$DATA ;; esac
LOG=$DATA/log
SECRETS=$DATA/secrets
# The service groups of docker-stack.yml (lib/mesh/groups.ts), each with its own mesh key.
MESH_GROUPS="api base-a base-b base-c report privacy operators"

PGPORT=${PGPORT:-5432}
NATS_PORT=${NATS_PORT:-4222}
NATS_HTTP_PORT=${NATS_HTTP_PORT:-8222}
MONGO_PORT=${MONGO_PORT:-27017}
ES_PORT=${ES_PORT:-9200}
ES_TRANSPORT_PORT=${ES_TRANSPORT_PORT:-9300}
ES_HEAP=${ES_HEAP:-1g}
[[ $ES_HEAP =~ ^[0-9]+[kKmMgG]$ ]] || { printf 'engines.sh: ES_HEAP=%s: expected e.g. 512m or 1g\n' "$ES_HEAP" >&2; exit 1; }

WAIT_SECS=30
IS_ROOT=0
[[ $(id -u) -eq 0 ]] && IS_ROOT=1

# ----------------------------------------------------------------- helpers

say() { printf '%s\n' "$*"; }
warn() { printf '%s\n' "$*" >&2; }
die() { printf 'engines.sh: %s\n' "$*" >&2; exit 1; }

# Print the last lines of a log file to stderr (for failed starts).
log_tail() {
  [[ -f $1 ]] || return 0
  warn "---- last lines of $1 ----"
  tail -n "${2:-30}" "$1" >&2 || true
  warn "----"
}

# True when something accepts TCP connections on 127.0.0.1:$1.
port_open() {
  # shellcheck disable=SC2016 # $1 expands in the child shell
  timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' _ "$1" 2>/dev/null
}

# True when pid $1 is alive and its command name is $2.
pid_is() {
  local pid=$1 name=$2 comm
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  if [[ -r /proc/$pid/comm ]]; then comm=$(cat "/proc/$pid/comm" 2>/dev/null || true)
  else comm=$(ps -o comm= -p "$pid" 2>/dev/null || true); comm=${comm##*/}
  fi
  [[ $comm == "$name"* ]]
}

APT_UPDATED=0
# As root: apt-get install the packages. Otherwise: say what to install, exit 1.
need_packages() {
  local what=$1; shift
  if (( ! IS_ROOT )); then
    die "$what is not installed. Install it first, e.g.: sudo apt-get install -y $*"
  fi
  command -v apt-get >/dev/null || die "$what is not installed and apt-get is not available; install: $*"
  say "installing $* (apt-get) ..."
  export DEBIAN_FRONTEND=noninteractive
  if (( ! APT_UPDATED )); then apt-get update -qq; APT_UPDATED=1; fi
  apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# As root: make the directories above $2 traversable (o+x) for OS user $1.
ensure_traversable() {
  local user=$1 d=$2
  (( IS_ROOT )) && id "$user" >/dev/null 2>&1 || return 0
  runuser -u "$user" -- test -x "$d" 2>/dev/null && return 0
  while [[ $d != / ]]; do
    d=$(dirname "$d")
    if [[ $(stat -c %A "$d") != *x ]] && [[ $(stat -c %A "$d") != *t ]]; then
      chmod o+x "$d"
      say "note: made $d traversable (o+x) so the $user user can reach $2"
    fi
  done
}

# Base directories. As root, make sure the postgres OS user can reach $DATA.
ensure_dirs() {
  local old_umask
  old_umask=$(umask); umask 022
  mkdir -p "$DATA" "$LOG"
  umask "$old_umask"
  chmod 755 "$DATA" "$LOG"
  ensure_traversable postgres "$DATA"
}

# Serialise up/down runs (tests may call them concurrently).
take_lock() {
  command -v flock >/dev/null || return 0
  exec 9>>"$DATA/.engines.lock"
  flock -w 120 9 || die "timed out waiting for another engines.sh run ($DATA/.engines.lock)"
}

# ----------------------------------------------------------------- secrets

rand_hex() { head -c "$1" /dev/urandom | od -An -v -tx1 | tr -d ' \n'; }
rand_b64() { head -c "$1" /dev/urandom | base64 | tr -d '\n'; }
rand_b64url() { rand_b64 "$1" | tr '+/' '-_' | tr -d '='; }

# Write $2 to secret file $1 (0600, no trailing newline) if the content changed.
write_secret() {
  local file=$SECRETS/$1 value=$2
  if [[ -f $file ]] && [[ $(cat "$file") == "$value" ]]; then return 0; fi
  ( umask 077; printf '%s' "$value" >"$file.tmp" && mv -f "$file.tmp" "$file" )
}

# Read a secret; passwords must be URL-safe because they go into URLs.
secret() { cat "$SECRETS/$1"; }
password() {
  local v; v=$(secret "$1")
  [[ $v =~ ^[A-Za-z0-9._~-]+$ ]] || die "$SECRETS/$1 must contain only URL-safe characters [A-Za-z0-9._~-]"
  printf '%s' "$v"
}

ensure_secrets() {
  local generated=0 name value
  ( umask 077; mkdir -p "$SECRETS" )
  chmod 700 "$SECRETS"
  for name in postgres_owner_password postgres_app_password nats_password mongo_app_password \
              admin_api_key pii_keys blind_index_key pseudonym_key; do
    [[ -s $SECRETS/$name ]] && continue
    case $name in
      *_password)      value=$(rand_hex 24) ;;
      admin_api_key)   value=cm_$(rand_b64url 32) ;;
      pii_keys)        value=dev1:$(rand_b64 32) ;;
      *)               value=$(rand_b64 32) ;;
    esac
    write_secret "$name" "$value"
    generated=1
  done
  # Each service group has its own NATS user (nats_password_<group>) and Ed25519 key (docs/security.md):
  # mesh_key_<group> holds `group:base64(PKCS#8 DER)`.
  for name in $MESH_GROUPS; do
    [[ -s $SECRETS/nats_password_$name ]] || { write_secret "nats_password_$name" "$(rand_hex 24)"; generated=1; }
  done
  for name in $MESH_GROUPS; do
    [[ -s $SECRETS/mesh_key_$name ]] && continue
    write_secret "mesh_key_$name" "$name:$(openssl genpkey -algorithm ed25519 -outform DER | base64 -w0)"
    generated=1
  done
  chmod 600 "$SECRETS"/* 2>/dev/null || true
  if (( generated )); then
    say "Development secrets were generated in $SECRETS (for local development only, never for production)."
  fi
}

# Every group's public key (MESH_PUBLIC_KEYS) and, for a process that runs every group (npm start, the
# tests), every private key (MESH_KEYS); a process of one group gets only mesh_key_<group>.
write_mesh_keys() {
  local name all=() public=() der
  for name in $MESH_GROUPS; do
    all+=("$(secret "mesh_key_$name")")
    der=$(secret "mesh_key_$name"); der=${der#*:}
    public+=("$name:$(base64 -d <<<"$der" | openssl pkey -inform DER -pubout -outform DER | base64 -w0)")
  done
  write_secret mesh_keys "$(IFS=,; echo "${all[*]}")"
  write_secret mesh_public_keys "$(IFS=,; echo "${public[*]}")"
}

# URLs derived from the passwords and the ports actually in use.
write_derived_secrets() {
  write_mesh_keys
  local owner app nats ml pgp np mp
  owner=$(password postgres_owner_password)
  app=$(password postgres_app_password)
  nats=$(password nats_password)
  ml=$(password mongo_app_password)
  pgp=$(postgres_port); np=$(nats_port); mp=$(mongo_port)
  write_secret postgres_url            "postgres://credit_app:$app@127.0.0.1:$pgp/credit"
  write_secret postgres_owner_url      "postgres://credit_owner:$owner@127.0.0.1:$pgp/credit"
  write_secret postgres_test_url       "postgres://credit_app:$app@127.0.0.1:$pgp/credit_test"
  write_secret postgres_test_owner_url "postgres://credit_owner:$owner@127.0.0.1:$pgp/credit_test"
  # `mesh` may act as every group (npm start, the tests); a process of one group uses transporter_<group>.
  write_secret transporter             "nats://mesh:$nats@127.0.0.1:$np"
  local name
  for name in $MESH_GROUPS; do
    write_secret "transporter_$name"   "nats://$name:$(password "nats_password_$name")@127.0.0.1:$np"
  done
  write_secret mongo_url               "mongodb://credit_ml:$ml@127.0.0.1:$mp/credit_b?authMechanism=PLAIN"
  write_secret mongo_test_url          "mongodb://credit_ml:$ml@127.0.0.1:$mp/credit_b_test?authMechanism=PLAIN"
  # No credential: security is off on the loopback-only Elasticsearch (Base C).
  write_secret elasticsearch_url       "http://127.0.0.1:$(elasticsearch_port)"
}

# ----------------------------------------------------------------- postgres

PG_DIR=$DATA/pg
PG_RUN=$DATA/pg-run
PG_LOG=$LOG/postgres.log
PG_BIN=

# Locate the PostgreSQL server binaries (the cluster's own major version first).
pg_find_bin() {
  local d ver
  if [[ -n ${PG_BINDIR:-} ]]; then
    [[ -x $PG_BINDIR/pg_ctl ]] || die "PG_BINDIR=$PG_BINDIR has no pg_ctl"
    PG_BIN=$PG_BINDIR; return 0
  fi
  if [[ -r $PG_DIR/PG_VERSION ]]; then
    ver=$(cat "$PG_DIR/PG_VERSION")
    if [[ -x /usr/lib/postgresql/$ver/bin/pg_ctl ]]; then PG_BIN=/usr/lib/postgresql/$ver/bin; return 0; fi
  fi
  # shellcheck disable=SC2012
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [[ -n $d && -x $d/initdb && -x $d/pg_ctl && -x $d/postgres ]]; then PG_BIN=$d; return 0; fi
  if d=$(command -v pg_ctl 2>/dev/null); then
    d=$(dirname "$(readlink -f "$d")")
    if [[ -x $d/initdb && -x $d/postgres ]]; then PG_BIN=$d; return 0; fi
  fi
  if command -v pg_config >/dev/null && d=$(pg_config --bindir 2>/dev/null) && [[ -x $d/initdb ]]; then
    PG_BIN=$d; return 0
  fi
  return 1
}

# Run a command as the cluster's OS user (postgres when we are root).
as_pg() {
  if (( IS_ROOT )); then (cd / && runuser -u postgres -- "$@"); else "$@"; fi
}

pg_superuser() { if (( IS_ROOT )); then echo postgres; else id -un; fi; }

pg_running() {
  [[ -n $PG_BIN && -f $PG_DIR/PG_VERSION ]] || return 1
  as_pg "$PG_BIN/pg_ctl" status -D "$PG_DIR" >/dev/null 2>&1
}

# Port of the running cluster (from postmaster.pid), else $PGPORT.
postgres_port() {
  local p=
  if [[ -r $PG_DIR/postmaster.pid ]] && pg_find_bin && pg_running; then
    p=$(sed -n 4p "$PG_DIR/postmaster.pid" 2>/dev/null || true)
  fi
  [[ $p =~ ^[0-9]+$ ]] && echo "$p" || echo "$PGPORT"
}

postgres_install() {
  if ! pg_find_bin; then
    if (( IS_ROOT )); then
      # Do not let the Debian package create/start its own "main" cluster.
      mkdir -p /etc/postgresql-common/createcluster.d
      echo 'create_main_cluster = false' >/etc/postgresql-common/createcluster.d/credit-mesh.conf
    fi
    need_packages "PostgreSQL" postgresql
    pg_find_bin || die "PostgreSQL installed but initdb/pg_ctl not found"
  fi
  if (( IS_ROOT )); then
    command -v runuser >/dev/null || die "runuser (util-linux) is required when running as root"
    id postgres >/dev/null 2>&1 || die "OS user 'postgres' does not exist (PostgreSQL refuses to run as root)"
  fi
}

pg_init() {
  [[ -f $PG_DIR/PG_VERSION ]] && return 0
  local locale=C su
  locale -a 2>/dev/null | grep -qiE '^c\.utf-?8$' && locale=C.UTF-8
  su=$(pg_superuser)
  say "postgres: initialising cluster in $PG_DIR (superuser $su, locale $locale)"
  mkdir -p "$PG_DIR"
  chmod 700 "$PG_DIR"
  (( IS_ROOT )) && chown postgres: "$PG_DIR"
  if ! as_pg "$PG_BIN/initdb" -D "$PG_DIR" -U "$su" --auth-local=peer --auth-host=scram-sha-256 \
        --encoding=UTF8 --locale="$locale" >"$LOG/initdb.log" 2>&1; then
    log_tail "$LOG/initdb.log"
    rm -rf "${PG_DIR:?}"
    die "postgres: initdb failed"
  fi
  printf "\n# Project settings (rewritten by scripts/engines.sh on every start)\ninclude_if_exists = 'credit-mesh.conf'\n" \
    | as_pg tee -a "$PG_DIR/postgresql.conf" >/dev/null
}

postgres_up() {
  ensure_dirs
  pg_init
  if pg_running; then
    local p; p=$(postgres_port)
    say "postgres: already running on 127.0.0.1:$p"
    [[ $p == "$PGPORT" ]] || warn "postgres: note: PGPORT=$PGPORT requested; run 'down postgres' then 'up postgres' to move it"
    pg_provision
    return 0
  fi
  if port_open "$PGPORT"; then
    die "postgres: port 127.0.0.1:$PGPORT is already in use by another process (not the cluster in $PG_DIR). Stop it or use another port: PGPORT=5433 bash scripts/engines.sh up"
  fi
  local sock=$PG_RUN/.s.PGSQL.$PGPORT
  (( ${#sock} <= 100 )) || die "postgres: socket path $sock is too long for a unix socket; use a shorter CREDIT_MESH_DATA"
  mkdir -p "$PG_RUN"; chmod 700 "$PG_RUN"
  touch "$PG_LOG"
  if (( IS_ROOT )); then chown postgres: "$PG_RUN" "$PG_LOG"; fi
  local esc_run=${PG_RUN//\'/\'\'}
  printf "# Generated by scripts/engines.sh; do not edit.\nlisten_addresses = '127.0.0.1'\nport = %s\nunix_socket_directories = '%s'\n" \
    "$PGPORT" "$esc_run" | as_pg tee "$PG_DIR/credit-mesh.conf" >/dev/null
  if ! as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR" -l "$PG_LOG" -w -t "$WAIT_SECS" start >"$LOG/pg_ctl.out" 2>&1 9>&-; then
    cat "$LOG/pg_ctl.out" >&2
    log_tail "$PG_LOG"
    die "postgres: failed to start (log: $PG_LOG)"
  fi
  pg_provision
  say "postgres: started on 127.0.0.1:$PGPORT (data $PG_DIR, log $PG_LOG)"
}

pg_psql() {
  as_pg "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_RUN" -p "$(postgres_port)" -U "$(pg_superuser)" "$@"
}

# Roles and databases; idempotent (passwords follow the secret files).
pg_provision() {
  local owner app db sql
  owner=$(password postgres_owner_password)
  app=$(password postgres_app_password)
  sql="
SELECT 'CREATE ROLE credit_owner' WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'credit_owner') \\gexec
SELECT 'CREATE ROLE credit_app' WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'credit_app') \\gexec
ALTER ROLE credit_owner WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD '$owner';
ALTER ROLE credit_app WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD '$app';
"
  for db in credit credit_test; do
    sql+="
SELECT 'CREATE DATABASE $db OWNER credit_owner' WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = '$db') \\gexec
ALTER DATABASE $db OWNER TO credit_owner;
REVOKE ALL ON DATABASE $db FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE $db TO credit_app;
\\connect $db
ALTER SCHEMA public OWNER TO credit_owner;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO credit_app;
\\connect postgres
"
  done
  local out
  if ! out=$(printf '%s' "$sql" | pg_psql -d postgres 2>&1); then
    warn "$(sed -E "s/PASSWORD '[^']*'/PASSWORD '<redacted>'/g" <<<"$out")"
    die "postgres: creating roles/databases failed"
  fi
}

postgres_down() {
  if ! pg_find_bin || ! pg_running; then say "postgres: not running"; return 0; fi
  if ! as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR" -m fast -w -t "$WAIT_SECS" stop >"$LOG/pg_ctl.out" 2>&1; then
    cat "$LOG/pg_ctl.out" >&2
    log_tail "$PG_LOG"
    die "postgres: failed to stop within ${WAIT_SECS}s"
  fi
  say "postgres: stopped"
}

postgres_status() {
  if ! pg_find_bin; then say "postgres  not installed"; return 0; fi
  if pg_running; then
    local pid; pid=$(head -n 1 "$PG_DIR/postmaster.pid" 2>/dev/null || echo '?')
    say "postgres  running  127.0.0.1:$(postgres_port)  (pid $pid, data $PG_DIR)"
  else
    say "postgres  stopped  127.0.0.1:$PGPORT"
  fi
}

# ----------------------------------------------------------------- mongo (FerretDB)
#
# FerretDB v1.24.2, built from engines/ferretdb (see main.go there), with its
# postgresql handler on the cluster above. Layout in PostgreSQL:
#   database credit_ferret   owned by credit_ferret (NOLOGIN); PUBLIC has no rights on it
#   role credit_ml           LOGIN, password secrets/mongo_app_password; CONNECT, CREATE,
#                            TEMPORARY on credit_ferret: FerretDB creates the schemas and
#                            tables as credit_ml, which owns them
#   role credit_ferret_anon  NOLOGIN, no rights: the role in FerretDB's handler URL (no password)
# A Mongo database is a PostgreSQL schema of credit_ferret (a collection is a table in it):
# dev uses Mongo database credit_b, tests credit_b_test (separate schemas).
#
# Authentication: clients use authMechanism=PLAIN (FerretDB 1.x embedded has no SCRAM).
# FerretDB opens a PostgreSQL pool with the client's user and password, so PostgreSQL
# checks the password, on the first command that reads or writes (not at connect time).
# A client without credentials gets the handler URL's role, credit_ferret_anon, which
# cannot log in: all its reads and writes fail. FerretDB runs with an empty environment
# so that pgx finds no PGPASSWORD/PGPASSFILE/~/.pgpass for that password-less URL.

FERRET_SRC=$ROOT/engines/ferretdb
FERRET_DIR=$DATA/ferretdb
FERRET_BIN=$DATA/bin/ferretdb
FERRET_PID=$FERRET_DIR/ferretdb.pid
FERRET_STATE=$FERRET_DIR/state   # "<mongo port> <postgres port> <build hash>" of the running server
FERRET_LOG=$LOG/ferretdb.log
FERRET_PGDB=credit_ferret

# Hash of the sources the binary is built from (stored in $FERRET_BIN.hash).
mongo_src_hash() {
  cat "$FERRET_SRC/main.go" "$FERRET_SRC/go.mod" "$FERRET_SRC/go.sum" | sha256sum | cut -c1-64
}

# Put Go on PATH (/usr/local/go/bin when present); die unless it is new enough for go.mod.
mongo_find_go() {
  if [[ -x /usr/local/go/bin/go && :$PATH: != *:/usr/local/go/bin:* ]]; then
    PATH=/usr/local/go/bin:$PATH
  fi
  local want have
  want=$(sed -nE 's/^go ([0-9]+(\.[0-9]+)*).*/\1/p' "$FERRET_SRC/go.mod")
  [[ -n $want ]] || die "mongo: no go directive in $FERRET_SRC/go.mod"
  command -v go >/dev/null \
    || die "mongo: Go >= $want is needed to build FerretDB (engines/ferretdb) and was not found on PATH or in /usr/local/go/bin. Install it from https://go.dev/dl/ into /usr/local/go (Debian 12's golang package is 1.19: too old)."
  have=$(go env GOVERSION 2>/dev/null || true); have=${have#go}
  if [[ ! $have =~ ^[0-9] ]] || [[ $(printf '%s\n' "$want" "$have" | sort -V | head -n 1) != "$want" ]]; then
    die "mongo: Go >= $want is needed to build FerretDB, found $(command -v go) (${have:-unknown version}). Install a newer Go from https://go.dev/dl/ into /usr/local/go."
  fi
}

# Build $FERRET_BIN unless it was already built from the same sources.
mongo_install() {
  local hash start
  hash=$(mongo_src_hash)
  if [[ -x $FERRET_BIN && -r $FERRET_BIN.hash && $(cat "$FERRET_BIN.hash") == "$hash" ]]; then return 0; fi
  mongo_find_go
  mkdir -p "$DATA/bin"
  say "mongo: building FerretDB from engines/ferretdb with $(go env GOVERSION) (about 1-2 min the first time) ..."
  start=$SECONDS
  rm -f "$FERRET_BIN.hash"
  if ! (cd "$FERRET_SRC" && GOTOOLCHAIN=local GOFLAGS=-mod=readonly go build -trimpath -o "$FERRET_BIN.tmp" .) \
       >"$LOG/ferretdb-build.log" 2>&1; then
    log_tail "$LOG/ferretdb-build.log"
    rm -f "$FERRET_BIN.tmp"
    die "mongo: building FerretDB failed (log: $LOG/ferretdb-build.log)"
  fi
  mv -f "$FERRET_BIN.tmp" "$FERRET_BIN"
  printf '%s\n' "$hash" >"$FERRET_BIN.hash"
  say "mongo: built $FERRET_BIN in $(( SECONDS - start )) s"
}

mongo_pid() { [[ -r $FERRET_PID ]] && tr -dc '0-9' <"$FERRET_PID"; }
mongo_running() { local pid; pid=$(mongo_pid || true); [[ -n $pid ]] && pid_is "$pid" ferretdb; }

# Field $1 (1 mongo port, 2 postgres port, 3 build hash) of the running server's state.
mongo_state() {
  local f=
  if mongo_running && [[ -r $FERRET_STATE ]]; then f=$(cut -d' ' -f"$1" "$FERRET_STATE"); fi
  echo "$f"
}
mongo_port() { local p; p=$(mongo_state 1); [[ $p =~ ^[0-9]+$ ]] && echo "$p" || echo "$MONGO_PORT"; }

# Roles and the PostgreSQL database FerretDB stores into; idempotent.
mongo_provision() {
  local ml db=$FERRET_PGDB sql out
  ml=$(password mongo_app_password)
  sql="
SELECT 'CREATE ROLE credit_ferret' WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'credit_ferret') \\gexec
SELECT 'CREATE ROLE credit_ferret_anon' WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'credit_ferret_anon') \\gexec
SELECT 'CREATE ROLE credit_ml' WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'credit_ml') \\gexec
ALTER ROLE credit_ferret WITH NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD NULL;
ALTER ROLE credit_ferret_anon WITH NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD NULL;
ALTER ROLE credit_ml WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD '$ml';
SELECT 'CREATE DATABASE $db OWNER credit_ferret' WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = '$db') \\gexec
ALTER DATABASE $db OWNER TO credit_ferret;
REVOKE ALL ON DATABASE $db FROM PUBLIC;
GRANT CONNECT, CREATE, TEMPORARY ON DATABASE $db TO credit_ml;
\\connect $db
ALTER SCHEMA public OWNER TO credit_ferret;
REVOKE ALL ON SCHEMA public FROM PUBLIC;
"
  if ! out=$(printf '%s' "$sql" | pg_psql -d postgres 2>&1); then
    warn "$(sed -E "s/PASSWORD '[^']*'/PASSWORD '<redacted>'/g" <<<"$out")"
    die "mongo: creating the PostgreSQL roles/database for FerretDB failed"
  fi
}

mongo_up() {
  ensure_dirs
  if ! pg_find_bin || ! pg_running; then
    die "mongo: PostgreSQL must be running first (FerretDB stores its data there): bash scripts/engines.sh up postgres mongo"
  fi
  mongo_provision
  local pgp; pgp=$(postgres_port)
  if mongo_running; then
    local port; port=$(mongo_port)
    say "mongo: already running on 127.0.0.1:$port"
    [[ $port == "$MONGO_PORT" ]] || warn "mongo: note: MONGO_PORT=$MONGO_PORT requested; run 'down mongo' then 'up mongo' to move it"
    [[ $(mongo_state 2) == "$pgp" ]] || warn "mongo: note: FerretDB uses PostgreSQL port $(mongo_state 2) but the cluster listens on $pgp; run 'down mongo' then 'up mongo'"
    [[ $(mongo_state 3) == "$(cat "$FERRET_BIN.hash")" ]] || warn "mongo: note: FerretDB was rebuilt since it started; run 'down mongo' then 'up mongo' to use the new build"
    return 0
  fi
  if port_open "$MONGO_PORT"; then
    die "mongo: port 127.0.0.1:$MONGO_PORT is already in use by another process. Stop it or use another port: MONGO_PORT=27018 bash scripts/engines.sh up"
  fi
  ( umask 077; mkdir -p "$FERRET_DIR" )
  chmod 700 "$FERRET_DIR"
  rm -f "$FERRET_PID"
  printf '%s %s %s\n' "$MONGO_PORT" "$pgp" "$(cat "$FERRET_BIN.hash")" >"$FERRET_STATE"
  # No password in the URL (see above); env -i: no PG* variables, no ~/.pgpass.
  local url="postgres://credit_ferret_anon@127.0.0.1:$pgp/$FERRET_PGDB?sslmode=disable&pool_max_conns=20"
  # setsid: detach from the caller's process group so the server outlives it.
  nohup setsid env -i PATH=/usr/bin:/bin HOME="$FERRET_DIR" PGPASSFILE=/dev/null \
    "$FERRET_BIN" -listen "127.0.0.1:$MONGO_PORT" -pid-file "$FERRET_PID" -postgresql-url "$url" \
    >>"$FERRET_LOG" 2>&1 </dev/null 9>&- &
  local launcher=$! i
  for (( i = 0; i < WAIT_SECS * 5; i++ )); do
    if mongo_running && port_open "$MONGO_PORT"; then
      say "mongo: started FerretDB on mongodb://127.0.0.1:$MONGO_PORT (PostgreSQL database $FERRET_PGDB, log $FERRET_LOG)"
      return 0
    fi
    if ! kill -0 "$launcher" 2>/dev/null && ! mongo_running; then
      sleep 0.2
      mongo_running || { log_tail "$FERRET_LOG"; die "mongo: FerretDB exited during startup"; }
    fi
    sleep 0.2
  done
  log_tail "$FERRET_LOG"
  die "mongo: FerretDB not listening on 127.0.0.1:$MONGO_PORT within ${WAIT_SECS}s (log: $FERRET_LOG)"
}

mongo_down() {
  if ! mongo_running; then rm -f "$FERRET_PID"; say "mongo: not running"; return 0; fi
  local pid i; pid=$(mongo_pid)
  kill -TERM "$pid" 2>/dev/null || true
  for (( i = 0; i < WAIT_SECS * 10; i++ )); do
    pid_is "$pid" ferretdb || { rm -f "$FERRET_PID"; say "mongo: stopped"; return 0; }
    sleep 0.1
  done
  warn "mongo: still running after ${WAIT_SECS}s; sending SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$FERRET_PID"
  say "mongo: killed"
}

mongo_status() {
  if [[ ! -x $FERRET_BIN ]]; then say "mongo     not built (FerretDB: $FERRET_BIN)"; return 0; fi
  if mongo_running; then
    say "mongo     running  mongodb://127.0.0.1:$(mongo_port)  (FerretDB pid $(mongo_pid), PostgreSQL database $FERRET_PGDB)"
  else
    say "mongo     stopped  mongodb://127.0.0.1:$MONGO_PORT"
  fi
}

# ----------------------------------------------------------------- nats

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

nats_pid() { [[ -r $NATS_PID ]] && tr -dc '0-9' <"$NATS_PID"; }
nats_running() { local pid; pid=$(nats_pid || true); [[ -n $pid ]] && pid_is "$pid" nats-server; }

# Ports of the running server (from its config), else the requested ones.
nats_conf_port() {
  local key=$1 p=
  if nats_running && [[ -r $NATS_CONF ]]; then
    p=$(sed -nE "s/^${key}: *\"?127\.0\.0\.1:([0-9]+)\"?.*/\1/p" "$NATS_CONF" | head -n 1)
  fi
  echo "$p"
}
nats_port() { local p; p=$(nats_conf_port listen); echo "${p:-$NATS_PORT}"; }
nats_http_port() { local p; p=$(nats_conf_port http); echo "${p:-$NATS_HTTP_PORT}"; }

nats_healthy() {
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
# protocol; only the groups that own streams (base-c, privacy) use JetStream's API; a group publishes
# only into the streams it feeds.
nats_permissions() {
  local feeds_none='"*.transactions.>", "*.events.>", "*.privacy.>"'
  case $1 in
    api|operators) echo "publish: { deny: [\"\$JS.>\", $feeds_none] }, subscribe: { deny: [\"\$JS.>\", $feeds_none] }" ;;
    base-a|base-b|report) echo "publish: { deny: [\"\$JS.>\", \"*.transactions.>\", \"*.privacy.>\"] }, subscribe: { deny: [$feeds_none] }" ;;
    base-c) echo "publish: { deny: [\"*.privacy.>\"] }, subscribe: { deny: [\"*.privacy.>\"] }" ;;
    privacy) echo "publish: { deny: [\"*.transactions.>\", \"*.events.>\"] }, subscribe: { deny: [\"*.transactions.>\", \"*.events.>\"] }" ;;
  esac
}

# Write $NATS_CONF for the given client and monitoring ports.
nats_write_conf() {
  local pw name users=""; pw=$(password nats_password)
  ( umask 077; mkdir -p "$NATS_DIR/js" )
  chmod 700 "$NATS_DIR"
  nats_tls
  for name in $MESH_GROUPS; do
    users+="    { user: \"$name\", password: \"$(password "nats_password_$name")\", permissions: { $(nats_permissions "$name") } }"$'\n'
  done
  ( umask 077
    cat >"$NATS_CONF.tmp" <<EOF
# Generated by scripts/engines.sh; do not edit (rewritten on every start).
server_name: credit_mesh_dev
listen: "127.0.0.1:$1"
http: "127.0.0.1:$2"
pid_file: "$NATS_PID"
max_payload: 8MB
jetstream {
  store_dir: "$NATS_DIR/js"
}
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
EOF
  )
  local out
  if ! out=$("$NATS_BIN" -c "$NATS_CONF.tmp" -t 2>&1); then
    warn "$out"
    die "nats: invalid configuration $NATS_CONF.tmp"
  fi
  mv -f "$NATS_CONF.tmp" "$NATS_CONF"
}

nats_up() {
  ensure_dirs
  if nats_running; then
    local port http
    port=$(nats_port); http=$(nats_http_port)
    say "nats: already running on 127.0.0.1:$port"
    [[ $port == "$NATS_PORT" ]] || warn "nats: note: NATS_PORT=$NATS_PORT requested; run 'down nats' then 'up nats' to move it"
    # The password secret was regenerated: reload the running server.
    # A password or a group was added or changed: reload the running server.
    local before; before=$(cat "$NATS_CONF")
    nats_write_conf "$port" "$http"
    if [[ $before != "$(cat "$NATS_CONF")" ]]; then
      kill -HUP "$(nats_pid)"
      say "nats: configuration changed; reloaded"
    fi
    return 0
  fi
  local port
  for port in "$NATS_PORT" "$NATS_HTTP_PORT"; do
    if port_open "$port"; then
      die "nats: port 127.0.0.1:$port is already in use by another process. Stop it or set NATS_PORT / NATS_HTTP_PORT."
    fi
  done
  rm -f "$NATS_PID"
  nats_write_conf "$NATS_PORT" "$NATS_HTTP_PORT"
  # setsid: detach from the caller's process group so the server outlives it.
  nohup setsid "$NATS_BIN" -c "$NATS_CONF" >>"$NATS_LOG" 2>&1 </dev/null 9>&- &
  local launcher=$! i
  for (( i = 0; i < WAIT_SECS * 5; i++ )); do
    if nats_running && nats_healthy "$NATS_HTTP_PORT"; then
      say "nats: started on nats://127.0.0.1:$NATS_PORT (monitor http://127.0.0.1:$NATS_HTTP_PORT, log $NATS_LOG)"
      return 0
    fi
    if ! kill -0 "$launcher" 2>/dev/null && ! nats_running; then
      sleep 0.2
      nats_running || { log_tail "$NATS_LOG"; die "nats: server exited during startup"; }
    fi
    sleep 0.2
  done
  log_tail "$NATS_LOG"
  die "nats: not healthy within ${WAIT_SECS}s (log: $NATS_LOG)"
}

nats_down() {
  if ! nats_running; then rm -f "$NATS_PID"; say "nats: not running"; return 0; fi
  local pid i; pid=$(nats_pid)
  kill -TERM "$pid" 2>/dev/null || true
  for (( i = 0; i < WAIT_SECS * 10; i++ )); do
    pid_is "$pid" nats-server || { rm -f "$NATS_PID"; say "nats: stopped"; return 0; }
    sleep 0.1
  done
  warn "nats: still running after ${WAIT_SECS}s; sending SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$NATS_PID"
  say "nats: killed"
}

nats_status() {
  if ! nats_find_bin; then say "nats      not installed"; return 0; fi
  if nats_running; then
    say "nats      running  nats://127.0.0.1:$(nats_port)  (monitor http://127.0.0.1:$(nats_http_port), pid $(nats_pid))"
  else
    say "nats      stopped  nats://127.0.0.1:$NATS_PORT"
  fi
}

# ----------------------------------------------------------------- elasticsearch
#
# A real Elasticsearch 8.19.21 from Maven Central's integ-test-zip distribution
# (org.elasticsearch.distribution.integ-test-zip:elasticsearch; ../shared/ENGINES.md):
# fetched with `mvn dependency:get` into ~/.m2, unzipped once into
# $DATA/elasticsearch-<version> (read-only for the server), run on the system JDK
# (no bundled JDK in this distribution). Short name: es.
#   $DATA/es/config   copy of the distribution's config (ES writes its keystore there)
#   $DATA/es/data     path.data          $DATA/es/logs   path.logs (credit-mesh.log, gc.log)
#   $DATA/es/run      pid file           $DATA/es/tmp    temp files of the launcher and server
# ES 8.19 attaches an agent to itself at boot through the JVM attach socket, which HotSpot
# always creates in /tmp (java.io.tmpdir does not move it). Where /tmp is not writable for
# the server's user (some images have /tmp 0755), root sets it to the usual 1777.
# ES refuses to run as root: as root it runs as the system user credit-es, which owns
# those directories. Security is OFF (xpack.security.enabled=false): Base C is the
# "low security" base and the server listens on 127.0.0.1 only, so there is no password;
# the secret file elasticsearch_url only holds the URL, for symmetry with the others.
# Dev and tests share the server: the application separates them by index prefix
# (ES_INDEX_PREFIX, printed by `env`). Heap: ES_HEAP (default 1g, sized for a 2-core
# 24 GiB machine). Note: GET / answers 405 on this distribution; use _cluster/health.

ES_VERSION=8.19.21
ES_ARTIFACT=org.elasticsearch.distribution.integ-test-zip:elasticsearch:$ES_VERSION:zip
ES_ZIP=${M2_REPO:-$HOME/.m2/repository}/org/elasticsearch/distribution/integ-test-zip/elasticsearch/$ES_VERSION/elasticsearch-$ES_VERSION.zip
ES_HOME=$DATA/elasticsearch-$ES_VERSION
ES_DIR=$DATA/es
ES_PID=$ES_DIR/run/elasticsearch.pid
ES_STATE=$ES_DIR/state   # "<http port> <transport port> <heap>" of the running server
ES_LOG=$LOG/elasticsearch.log   # launcher output; the server logs into $ES_DIR/logs
ES_SERVER_LOG=$ES_DIR/logs/credit-mesh.log
ES_USER=credit-es
ES_WAIT_SECS=90
ES_JAVA=

# A JDK the server supports (17 or 21+): ES_JAVA_HOME, the Debian 17, any 17, Temurin.
es_find_java() {
  local d v
  if [[ -n ${ES_JAVA_HOME:-} ]]; then
    [[ -x $ES_JAVA_HOME/bin/java ]] || die "elasticsearch: ES_JAVA_HOME=$ES_JAVA_HOME has no bin/java"
    ES_JAVA=$ES_JAVA_HOME; return 0
  fi
  for d in /usr/lib/jvm/java-17-openjdk-amd64 /usr/lib/jvm/*17* /usr/lib/jvm/temurin-* /usr/lib/jvm/*; do
    [[ -x $d/bin/java && -r $d/release ]] || continue
    v=$(sed -nE 's/^JAVA_VERSION="([0-9]+).*/\1/p' "$d/release")
    [[ $v =~ ^[0-9]+$ ]] || continue
    (( v == 17 || v >= 21 )) || continue
    ES_JAVA=$(cd "$d" && pwd -P); return 0
  done
  return 1
}

es_pid() { [[ -r $ES_PID ]] && tr -dc '0-9' <"$ES_PID"; }
elasticsearch_running() { local pid; pid=$(es_pid || true); [[ -n $pid ]] && pid_is "$pid" java; }
# True when the process is stopped by a signal (SIGSTOP/SIGTSTP).
es_frozen() { [[ $(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) == T ]]; }

es_state() {
  local f=
  if elasticsearch_running && [[ -r $ES_STATE ]]; then f=$(cut -d' ' -f"$1" "$ES_STATE"); fi
  echo "$f"
}
elasticsearch_port() { local p; p=$(es_state 1); [[ $p =~ ^[0-9]+$ ]] && echo "$p" || echo "$ES_PORT"; }

# Cluster health of the server on port $1 (empty when it does not answer in time).
es_health() {
  curl -sf --max-time "${2:-3}" "http://127.0.0.1:$1/_cluster/health?wait_for_status=yellow&timeout=1s" 2>/dev/null \
    | sed -nE 's/.*"status":"([a-z]+)".*/\1/p'
}

elasticsearch_install() {
  command -v curl >/dev/null || need_packages "curl" curl
  if ! es_find_java; then
    need_packages "a Java 17 runtime (for Elasticsearch)" openjdk-17-jre-headless
    es_find_java || die "elasticsearch: no Java 17 or 21+ found in /usr/lib/jvm (set ES_JAVA_HOME)"
  fi
  if (( IS_ROOT )); then
    command -v runuser >/dev/null || die "runuser (util-linux) is required when running as root"
    if ! id "$ES_USER" >/dev/null 2>&1; then
      useradd --system --user-group --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin --comment "credit-mesh local Elasticsearch" "$ES_USER"
      say "elasticsearch: created system user $ES_USER (Elasticsearch refuses to run as root)"
    fi
  fi
  [[ -x $ES_HOME/bin/elasticsearch ]] && return 0
  local start=$SECONDS tmp
  if [[ ! -s $ES_ZIP ]]; then
    command -v mvn >/dev/null || need_packages "Maven (mvn, to fetch Elasticsearch from Maven Central)" maven
    say "elasticsearch: fetching $ES_ARTIFACT from Maven Central (about 107 MB) ..."
    if ! JAVA_HOME=${JAVA_HOME:-$ES_JAVA} mvn -B -q dependency:get -Dartifact="$ES_ARTIFACT" -Dtransitive=false \
         ${M2_REPO:+"-Dmaven.repo.local=$M2_REPO"} >"$LOG/elasticsearch-mvn.log" 2>&1 9>&- || [[ ! -s $ES_ZIP ]]; then
      log_tail "$LOG/elasticsearch-mvn.log"
      die "elasticsearch: mvn dependency:get failed (log: $LOG/elasticsearch-mvn.log)"
    fi
    say "elasticsearch: downloaded in $(( SECONDS - start )) s"
  fi
  command -v unzip >/dev/null || need_packages "unzip" unzip
  tmp=$DATA/.elasticsearch-unzip.tmp
  rm -rf "$tmp"
  ( umask 022; mkdir -p "$tmp" && unzip -q "$ES_ZIP" -d "$tmp" ) \
    || { rm -rf "$tmp"; die "elasticsearch: unzip $ES_ZIP failed (a corrupt download? delete it and retry)"; }
  [[ -x $tmp/elasticsearch-$ES_VERSION/bin/elasticsearch ]] \
    || { rm -rf "$tmp"; die "elasticsearch: $ES_ZIP has no elasticsearch-$ES_VERSION/bin/elasticsearch"; }
  chmod -R a+rX "$tmp/elasticsearch-$ES_VERSION"
  mv "$tmp/elasticsearch-$ES_VERSION" "$ES_HOME"
  rm -rf "$tmp"
  say "elasticsearch: installed $ES_HOME in $(( SECONDS - start )) s"
}

# Directories owned by the server's user; the config is copied once from the distribution.
es_dirs() {
  local d
  mkdir -p "$ES_DIR"; chmod 755 "$ES_DIR"
  if [[ ! -f $ES_DIR/config/elasticsearch.yml ]]; then
    rm -rf "$ES_DIR/config.tmp"
    cp -R "$ES_HOME/config" "$ES_DIR/config.tmp"
    mv "$ES_DIR/config.tmp" "$ES_DIR/config"
  fi
  for d in config data logs run tmp; do
    mkdir -p "$ES_DIR/$d"; chmod 750 "$ES_DIR/$d"
  done
  if (( IS_ROOT )); then
    chown -R "$ES_USER:" "$ES_DIR/config" "$ES_DIR/data" "$ES_DIR/logs" "$ES_DIR/run" "$ES_DIR/tmp"
    ensure_traversable "$ES_USER" "$ES_HOME/bin"
    runuser -u "$ES_USER" -- test -r "$ES_HOME/lib" -a -x "$ES_HOME/bin/elasticsearch" -a -w "$ES_DIR/data" \
      || die "elasticsearch: user $ES_USER cannot read $ES_HOME or write $ES_DIR"
  fi
}

# Wait (bounded) for health yellow or green; $1 = launcher pid or empty.
es_wait() {
  local launcher=$1 port=$2 deadline=$(( SECONDS + ES_WAIT_SECS )) h
  while (( SECONDS < deadline )); do
    h=$(es_health "$port")
    if [[ -n $h ]] && elasticsearch_running; then echo "$h"; return 0; fi
    if [[ -n $launcher ]] && ! kill -0 "$launcher" 2>/dev/null && ! elasticsearch_running; then
      sleep 0.5
      elasticsearch_running || { log_tail "$ES_LOG"; log_tail "$ES_SERVER_LOG" 40; die "elasticsearch: exited during startup (logs: $ES_LOG, $ES_SERVER_LOG)"; }
    fi
    sleep 0.5
  done
  log_tail "$ES_LOG"; log_tail "$ES_SERVER_LOG" 40
  die "elasticsearch: not healthy (yellow) on 127.0.0.1:$port within ${ES_WAIT_SECS}s (logs: $ES_LOG, $ES_SERVER_LOG)"
}

elasticsearch_up() {
  ensure_dirs
  local h pid
  if elasticsearch_running; then
    local port; port=$(elasticsearch_port); pid=$(es_pid)
    if es_frozen "$pid"; then
      die "elasticsearch: pid $pid is stopped by a signal (SIGSTOP); resume it: kill -CONT $pid"
    fi
    # A server still starting (or a previous up that timed out): wait for it, bounded.
    h=$(es_wait "" "$port")
    say "elasticsearch: already running on http://127.0.0.1:$port ($h)"
    [[ $port == "$ES_PORT" ]] || warn "elasticsearch: note: ES_PORT=$ES_PORT requested; run 'down elasticsearch' then 'up elasticsearch' to move it"
    return 0
  fi
  local port
  for port in "$ES_PORT" "$ES_TRANSPORT_PORT"; do
    if port_open "$port"; then
      die "elasticsearch: port 127.0.0.1:$port is already in use by another process. Stop it or set ES_PORT / ES_TRANSPORT_PORT."
    fi
  done
  es_find_java || die "elasticsearch: no Java 17 or 21+ found (set ES_JAVA_HOME)"
  es_dirs
  rm -f "$ES_PID"
  printf '%s %s %s\n' "$ES_PORT" "$ES_TRANSPORT_PORT" "$ES_HEAP" >"$ES_STATE"
  local -a run=() argv=(
    env -i PATH=/usr/bin:/bin HOME="$ES_DIR" LANG=C.UTF-8
    ES_JAVA_HOME="$ES_JAVA" ES_PATH_CONF="$ES_DIR/config"
    ES_TMPDIR="$ES_DIR/tmp" TMPDIR="$ES_DIR/tmp" CLI_JAVA_OPTS="-Djava.io.tmpdir=$ES_DIR/tmp"
    ES_JAVA_OPTS="-Xms$ES_HEAP -Xmx$ES_HEAP"
    "$ES_HOME/bin/elasticsearch" -d -p "$ES_PID"
    -Ediscovery.type=single-node
    -Expack.security.enabled=false
    -Ecluster.routing.allocation.disk.threshold_enabled=false
    -Enetwork.host=127.0.0.1
    -Ehttp.port="$ES_PORT"
    -Etransport.port="$ES_TRANSPORT_PORT"
    -Epath.data="$ES_DIR/data"
    -Epath.logs="$ES_DIR/logs"
    -Ecluster.name=credit-mesh
    -Enode.name=local
    -Eaction.destructive_requires_name=false
    -Ebootstrap.memory_lock=false
  )
  if (( IS_ROOT )); then
    run=(runuser -u "$ES_USER" --)
    if ! runuser -u "$ES_USER" -- test -w /tmp -a -x /tmp; then
      # A private /tmp (a mount namespace) would hide $DATA whenever the checkout itself lives under
      # /tmp, so give /tmp the mode every Linux system expects instead: world-writable, sticky.
      chmod 1777 /tmp
      say "elasticsearch: note: /tmp was not writable for $ES_USER; set it to 1777 (the usual mode, sticky bit on)"
    fi
  elif [[ ! -w /tmp || ! -x /tmp ]]; then
    die "elasticsearch: /tmp must be writable (the JVM attach socket Elasticsearch uses at boot goes there)"
  fi
  local start=$SECONDS
  printf '\n==== %s: starting Elasticsearch %s (http %s, transport %s, heap %s)\n' \
    "$(date -u +%FT%TZ)" "$ES_VERSION" "$ES_PORT" "$ES_TRANSPORT_PORT" "$ES_HEAP" >>"$ES_LOG"
  # -d: the launcher exits once the node has started; the server (pid in $ES_PID) stays.
  # setsid: detach from the caller's process group so the server outlives it.
  (cd "$ES_DIR" && exec setsid "${run[@]}" "${argv[@]}") >>"$ES_LOG" 2>&1 </dev/null 9>&- &
  local launcher=$!
  h=$(es_wait "$launcher" "$ES_PORT")
  say "elasticsearch: started $ES_VERSION on http://127.0.0.1:$ES_PORT in $(( SECONDS - start )) s ($h, pid $(es_pid), logs $ES_DIR/logs)"
}

elasticsearch_down() {
  if ! elasticsearch_running; then rm -f "$ES_PID"; say "elasticsearch: not running"; return 0; fi
  local pid i; pid=$(es_pid)
  kill -TERM "$pid" 2>/dev/null || true
  kill -CONT "$pid" 2>/dev/null || true   # a frozen (SIGSTOP) server must run to handle TERM
  for (( i = 0; i < ES_WAIT_SECS * 5; i++ )); do
    pid_is "$pid" java || { rm -f "$ES_PID"; say "elasticsearch: stopped"; return 0; }
    sleep 0.2
  done
  warn "elasticsearch: still running after ${ES_WAIT_SECS}s; sending SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
  for (( i = 0; i < 50; i++ )); do pid_is "$pid" java || break; sleep 0.1; done
  rm -f "$ES_PID"
  say "elasticsearch: killed"
}

elasticsearch_status() {
  if [[ ! -x $ES_HOME/bin/elasticsearch ]]; then say "elasticsearch  not installed ($ES_HOME)"; return 0; fi
  if elasticsearch_running; then
    local pid port h; pid=$(es_pid); port=$(elasticsearch_port)
    if es_frozen "$pid"; then h="frozen (SIGSTOP)"; else h=$(es_health "$port" 2); h=${h:-not answering}; fi
    say "elasticsearch  running  http://127.0.0.1:$port  ($h, pid $pid, heap $(es_state 3), data $ES_DIR/data)"
  else
    say "elasticsearch  stopped  http://127.0.0.1:$ES_PORT"
  fi
}

# ----------------------------------------------------------------- commands

# Full engine name (es = elasticsearch); dies on an unknown one.
engine_name() {
  local e=$1
  [[ $e == es ]] && e=elasticsearch
  [[ " $ENGINES " == *" $e "* ]] || die "unknown engine '$1' (known: $ENGINES; es = elasticsearch)"
  echo "$e"
}

# Validate engine names; no argument = all engines.
select_engines() {
  local e out=
  if (( $# == 0 )); then echo "$ENGINES"; return 0; fi
  for e in "$@"; do out+="$(engine_name "$e") "; done
  echo "${out% }"
}

cmd_up() {
  local engines e
  engines=$(select_engines "$@")
  ensure_dirs
  take_lock
  for e in $engines; do "${e}_install"; done
  ensure_secrets
  for e in $engines; do "${e}_up"; done
  write_derived_secrets
}

cmd_down() {
  local engines e reversed=
  engines=$(select_engines "$@")
  [[ -d $DATA ]] || { for e in $engines; do say "$e: not running"; done; return 0; }
  take_lock
  # Reverse order: mongo (FerretDB) before the postgres it stores into.
  for e in $engines; do reversed="$e $reversed"; done
  for e in $reversed; do "${e}_down"; done
}

cmd_status() {
  local e
  for e in $ENGINES; do "${e}_status"; done
}

# Pid of a running engine's server process (for tests that SIGSTOP/SIGCONT it).
cmd_pid() {
  (( $# == 1 )) || die "usage: engines.sh pid <engine>"
  local e pid=; e=$(engine_name "$1")
  case $e in
    postgres) if pg_find_bin && pg_running; then pid=$(head -n 1 "$PG_DIR/postmaster.pid"); fi ;;
    mongo) mongo_running && pid=$(mongo_pid) ;;
    nats) nats_running && pid=$(nats_pid) ;;
    elasticsearch) elasticsearch_running && pid=$(es_pid) ;;
  esac
  [[ $pid =~ ^[0-9]+$ ]] || { warn "engines.sh: $e is not running"; return 1; }
  echo "$pid"
}

cmd_env() {
  local mode=${1:-dev} pg=postgres_url pg_owner=postgres_owner_url mongo=mongo_url es_prefix=credit-dev keys=mesh_keys transporter=transporter
  case $mode in
    dev) ;;
    test) pg=postgres_test_url; pg_owner=postgres_test_owner_url; mongo=mongo_test_url; es_prefix=credit-test ;;
    *) die "usage: engines.sh env [dev|test] [--group NAME]" ;;
  esac
  (( $# )) && shift
  if [[ ${1:-} == --group ]]; then
    [[ " $MESH_GROUPS " == *" ${2:-} "* ]] || die "engines.sh env: --group takes one of: $MESH_GROUPS"
    keys=mesh_key_$2; transporter=transporter_$2
  fi
  [[ -f $SECRETS/transporter ]] || warn "engines.sh: no secrets in $SECRETS yet; run: bash scripts/engines.sh up"
  printf 'export %s=%q\n' \
    TRANSPORTER_FILE "$SECRETS/$transporter" \
    NATS_CA_FILE "$SECRETS/nats_ca.pem" \
    POSTGRES_URL_FILE "$SECRETS/$pg" \
    POSTGRES_OWNER_URL_FILE "$SECRETS/$pg_owner" \
    MONGO_URL_FILE "$SECRETS/$mongo" \
    ELASTICSEARCH_URL_FILE "$SECRETS/elasticsearch_url" \
    ES_INDEX_PREFIX "$es_prefix" \
    JETSTREAM_MAX_BYTES 268435456 \
    ADMIN_API_KEY_FILE "$SECRETS/admin_api_key" \
    PII_KEYS_FILE "$SECRETS/pii_keys" \
    BLIND_INDEX_KEY_FILE "$SECRETS/blind_index_key" \
    PSEUDONYM_KEY_FILE "$SECRETS/pseudonym_key" \
    MESH_KEYS_FILE "$SECRETS/$keys" \
    MESH_PUBLIC_KEYS_FILE "$SECRETS/mesh_public_keys" \
    CREDIT_MESH_DATA "$DATA"
}

usage() {
  cat >&2 <<EOF
usage: bash scripts/engines.sh up [engine...]
       bash scripts/engines.sh down [engine...]
       bash scripts/engines.sh status
       bash scripts/engines.sh pid <engine>
       bash scripts/engines.sh env [dev|test] [--group NAME]
engines: $ENGINES (default: all; es = elasticsearch)
data dir: $DATA
EOF
  exit 2
}

main() {
  local cmd=${1:-}
  (( $# )) && shift
  case $cmd in
    up) cmd_up "$@" ;;
    down) cmd_down "$@" ;;
    status) cmd_status ;;
    pid) cmd_pid "$@" ;;
    env) cmd_env "$@" ;;
    -h|--help|help|'') usage ;;
    *) warn "engines.sh: unknown command '$cmd'"; usage ;;
  esac
}

main "$@"
