# shellcheck shell=bash
# mongo (Base B): FerretDB v1.24.2, built from engines/ferretdb (see main.go there), with its
# postgresql handler on the cluster of postgres.sh. Layout in PostgreSQL:
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

MONGO_PORT=${MONGO_PORT:-27017}
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

mongo_pid() { pid_file_pid "$FERRET_PID" ferretdb; }
mongo_running() { mongo_pid >/dev/null; }
mongo_listening() { mongo_running && port_open "$MONGO_PORT"; }
# Field $1 (1 mongo port, 2 postgres port, 3 build hash) of the running server's state.
mongo_state() { state_field mongo "$FERRET_STATE" "$1"; }
mongo_port() { port_or "$(mongo_state 1)" "$MONGO_PORT"; }

# Roles and the PostgreSQL database FerretDB stores into; idempotent.
mongo_provision() {
  local ml db=$FERRET_PGDB
  ml=$(password mongo_app_password)
  pg_run_sql "
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
" "mongo: creating the PostgreSQL roles/database for FerretDB failed"
}

mongo_up() {
  ensure_dirs
  if ! postgres_running; then
    die "mongo: PostgreSQL must be running first (FerretDB stores its data there): bash scripts/engines.sh up postgres mongo"
  fi
  mongo_provision
  local pgp; pgp=$(postgres_port)
  if mongo_running; then
    local port; port=$(mongo_port)
    say "mongo: already running on 127.0.0.1:$port"
    note_port mongo MONGO_PORT "$port"
    [[ $(mongo_state 2) == "$pgp" ]] || warn "mongo: note: FerretDB uses PostgreSQL port $(mongo_state 2) but the cluster listens on $pgp; run 'down mongo' then 'up mongo'"
    [[ $(mongo_state 3) == "$(cat "$FERRET_BIN.hash")" ]] || warn "mongo: note: FerretDB was rebuilt since it started; run 'down mongo' then 'up mongo' to use the new build"
    return 0
  fi
  need_free_ports mongo ". Stop it or use another port: MONGO_PORT=27018 bash scripts/engines.sh up" "$MONGO_PORT"
  ( umask 077; mkdir -p "$FERRET_DIR" )
  chmod 700 "$FERRET_DIR"
  rm -f "$FERRET_PID"
  printf '%s %s %s\n' "$MONGO_PORT" "$pgp" "$(cat "$FERRET_BIN.hash")" >"$FERRET_STATE"
  # No password in the URL (see above); env -i: no PG* variables, no ~/.pgpass.
  local url="postgres://credit_ferret_anon@127.0.0.1:$pgp/$FERRET_PGDB?sslmode=disable&pool_max_conns=20" rc=0
  launch "$FERRET_DIR" "$FERRET_LOG" nohup env -i PATH=/usr/bin:/bin HOME="$FERRET_DIR" PGPASSFILE=/dev/null \
    "$FERRET_BIN" -listen "127.0.0.1:$MONGO_PORT" -pid-file "$FERRET_PID" -postgresql-url "$url"
  wait_ready "$WAIT_SECS" 0.2 "$LAUNCHER" mongo_running mongo_listening || rc=$?
  if (( rc == 0 )); then
    say "mongo: started FerretDB on mongodb://127.0.0.1:$MONGO_PORT (PostgreSQL database $FERRET_PGDB, log $FERRET_LOG)"
    return 0
  fi
  log_tail "$FERRET_LOG"
  (( rc == 2 )) && die "mongo: FerretDB exited during startup"
  die "mongo: FerretDB not listening on 127.0.0.1:$MONGO_PORT within ${WAIT_SECS}s (log: $FERRET_LOG)"
}

mongo_down() { stop_pid_file mongo "$FERRET_PID" ferretdb "$WAIT_SECS"; }

mongo_status() {
  if [[ ! -x $FERRET_BIN ]]; then say "mongo     not built (FerretDB: $FERRET_BIN)"; return 0; fi
  if mongo_running; then
    say "mongo     running  mongodb://127.0.0.1:$(mongo_port)  (FerretDB pid $(mongo_pid), PostgreSQL database $FERRET_PGDB)"
  else
    say "mongo     stopped  mongodb://127.0.0.1:$MONGO_PORT"
  fi
}
