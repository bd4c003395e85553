#!/usr/bin/env bash
# Base A's PostgreSQL pair in the stack (docker-stack.yml: pg-monitor, pg-node-1, pg-node-2), kept by
# pg_auto_failover on its authors' image (user `docker`, data under /var/lib/postgres, a volume). The
# entrypoint of the three services (config pg_autoctl_sh); docs/deploy.md, section 9.
#
#   PGAF_ROLE=monitor  the pg_auto_failover monitor
#   PGAF_ROLE=node     a data node (PGAF_NAME); the first to register is the primary, the other its
#                      synchronous standby; the monitor promotes the standby when the primary is lost
#   PGAF_HOSTNAME      the service name the others reach this one by
#
# Creates the node once (on an empty volume), then runs `pg_autoctl run` in the foreground. Every TCP
# login is scram-sha-256 over TLS (the rules are written here: --skip-pg-hba); pg_autoctl's own users
# share the secret pg_autoctl_password, which libpq reads from a .pgpass on /tmp (a tmpfs, 0600). The
# node that takes writes sets their passwords and the application's roles and database (what
# a single PostgreSQL's init script did), idempotently, at every start: a new password
# secret takes effect with the next deploy. Passwords reach psql as :'variables', never spliced into SQL.
set -euo pipefail

export PGDATA=/var/lib/postgres/pgaf XDG_CONFIG_HOME=/var/lib/postgres/config XDG_DATA_HOME=/var/lib/postgres/share \
  XDG_RUNTIME_DIR=/tmp PG_REGRESS_SOCK_DIR=/tmp PGHOST=/tmp PGPORT=5432 PGPASSFILE=/tmp/pgpass
role=${PGAF_ROLE:?PGAF_ROLE must be monitor or node}
host=${PGAF_HOSTNAME:?PGAF_HOSTNAME must name this service}

secret() {
  local v; v=$(tr -d '\r\n' <"/run/secrets/$1")
  [[ -n $v ]] || { echo "pg-autoctl: the secret $1 is missing or empty" >&2; exit 1; }
  printf '%s' "$v"
}
pw=$(secret pg_autoctl_password)
( umask 077; printf '*:*:*:%s:%s\n' autoctl_node "$pw" pgautofailover_monitor "$pw" pgautofailover_replicator "$pw" >"$PGPASSFILE" )

# Our access rules (every login with a password, TCP over TLS) and the connection budget.
configure() {
  printf '%s\n' "# Written by docker/pg-autoctl.sh at every start." \
    "local all autoctl_node,pgautofailover_monitor,pgautofailover_replicator scram-sha-256" \
    "local all all peer" \
    "hostssl replication pgautofailover_replicator all scram-sha-256" \
    "hostssl all all all scram-sha-256" >"$PGDATA/pg_hba.conf"
  printf "max_connections = %s\npassword_encryption = 'scram-sha-256'\nunix_socket_directories = '/tmp'\n" "${PG_MAX_CONNECTIONS:-100}" >"$PGDATA/credit-mesh.conf"
  grep -q "credit-mesh.conf" "$PGDATA/postgresql.conf" || printf "\ninclude_if_exists = 'credit-mesh.conf'\n" >>"$PGDATA/postgresql.conf"
}

common=(--pgdata "$PGDATA" --pgport 5432 --hostname "$host" --skip-pg-hba --ssl-self-signed)

if [[ $role == monitor ]]; then
  [[ -f $PGDATA/PG_VERSION ]] || pg_autoctl create monitor "${common[@]}"
  configure
  # The nodes log in as autoctl_node: its password, with the server on its socket only.
  pg_ctl -D "$PGDATA" -w -o "-c listen_addresses=''" start
  psql -X -q -v ON_ERROR_STOP=1 -d pg_auto_failover --set pw="$pw" <<<"ALTER ROLE autoctl_node PASSWORD :'pw';"
  pg_ctl -D "$PGDATA" -w -m fast stop
  exec pg_autoctl run --pgdata "$PGDATA"
fi

[[ $role == node ]] || { echo "pg-autoctl: PGAF_ROLE=$role: expected monitor or node" >&2; exit 1; }
if [[ ! -f $PGDATA/PG_VERSION ]]; then
  # The standby's base backup logs in as pgautofailover_replicator: until the primary has set its
  # password this fails, the task exits and Swarm starts it again.
  pg_autoctl create postgres "${common[@]}" --name "${PGAF_NAME:?}" --dbname credit \
    --monitor "postgres://autoctl_node@pg-monitor:5432/pg_auto_failover?sslmode=require"
fi
configure
pg_autoctl run --pgdata "$PGDATA" &
runner=$!
trap 'kill -TERM "$runner" 2>/dev/null' TERM INT

# Wait until this node serves: a standby has nothing to do; the primary provisions.
state=
until [[ -n $state ]]; do
  if ! kill -0 "$runner" 2>/dev/null; then wait "$runner"; exit 1; fi
  state=$(psql -X -At -d postgres -c "SELECT CASE WHEN pg_is_in_recovery() THEN 'standby' WHEN current_setting('transaction_read_only') = 'off' THEN 'primary' END" 2>/dev/null || true)
  [[ -n $state ]] || sleep 2
done
if [[ $state == primary ]]; then
  owner_pw=$(secret postgres_owner_password)
  app_pw=$(secret postgres_app_password)
  psql -X -q -v ON_ERROR_STOP=1 -d postgres --set pw="$pw" --set owner_pw="$owner_pw" --set app_pw="$app_pw" <<'SQL'
ALTER ROLE pgautofailover_replicator PASSWORD :'pw';
ALTER ROLE pgautofailover_monitor PASSWORD :'pw';
SELECT 'CREATE ROLE credit_owner' WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'credit_owner') \gexec
SELECT 'CREATE ROLE credit_app' WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'credit_app') \gexec
ALTER ROLE credit_owner WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'owner_pw';
ALTER ROLE credit_app WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'app_pw';
ALTER DATABASE credit OWNER TO credit_owner;
REVOKE ALL ON DATABASE credit FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE credit TO credit_app;
\connect credit
ALTER SCHEMA public OWNER TO credit_owner;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO credit_app;
SQL
  echo "pg-autoctl: $host is the primary; roles credit_owner, credit_app and pg_autoctl's passwords set"
fi
wait "$runner"
