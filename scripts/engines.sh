#!/usr/bin/env bash
# Start/stop the local engines credit-mesh needs, without Docker.
#
#   bash scripts/engines.sh up     [engine...]   start (installing/initialising when needed)
#   bash scripts/engines.sh down   [engine...]   stop
#   bash scripts/engines.sh status               one line per engine
#   bash scripts/engines.sh pid    <engine>      pid of the running server (exit 1 if not running)
#   bash scripts/engines.sh pg-pair up|down|status|env|primary|stop-node N|start-node N
#                                  the PostgreSQL primary + synchronous standby (engines/postgres-pair.sh)
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
# 127.0.0.1 only (see engines/elasticsearch.sh). Heap: ES_HEAP (1g).
#
# This file is the CLI; the work is in scripts/engines/: common.sh (helpers, the shared
# start-up wait and stop), secrets.sh (dev secrets, `env`), one file per engine.
# Adding an engine: append its name to ENGINES, source its file below and define
# <engine>_install, <engine>_up, <engine>_down, <engine>_status and <engine>_pid.
# shellcheck source-path=SCRIPTDIR
set -euo pipefail

ENGINES="postgres mongo nats elasticsearch"

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
DATA=${CREDIT_MESH_DATA:-$ROOT/.data}
case $DATA in /*) ;; *) DATA=$PWD/$DATA ;; esac
LOG=$DATA/log
SECRETS=$DATA/secrets
# The service groups of docker-stack.yml (config/groups.ts), each with its own mesh key.
MESH_GROUPS="api base-a base-b base-c base-c-front report privacy operators"
WAIT_SECS=30
IS_ROOT=0
[[ $(id -u) -eq 0 ]] && IS_ROOT=1

# shellcheck source=engines/common.sh
. "$ROOT/scripts/engines/common.sh"
# shellcheck source=engines/secrets.sh
. "$ROOT/scripts/engines/secrets.sh"
# shellcheck source=engines/postgres.sh
. "$ROOT/scripts/engines/postgres.sh"
# shellcheck source=engines/mongo.sh
. "$ROOT/scripts/engines/mongo.sh"
# shellcheck source=engines/nats.sh
. "$ROOT/scripts/engines/nats.sh"
# shellcheck source=engines/elasticsearch.sh
. "$ROOT/scripts/engines/elasticsearch.sh"
# shellcheck source=engines/postgres-pair.sh
. "$ROOT/scripts/engines/postgres-pair.sh"

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
  # `|| exit`: errexit is off in the command substitution that calls this.
  for e in "$@"; do e=$(engine_name "$e") || exit 1; out+="$e "; done
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
  # A plain `down` stops the PostgreSQL pair too, when there is one (engines/postgres-pair.sh).
  if (( $# == 0 )) && [[ -d $PGPAIR_DIR ]] && pg_find_bin; then pgpair_down; fi
}

cmd_status() {
  local e
  for e in $ENGINES; do "${e}_status"; done
  if [[ -d $PGPAIR_DIR ]] && pg_find_bin; then pgpair_status; fi
}

# Pid of a running engine's server process (for tests that SIGSTOP/SIGCONT it).
cmd_pid() {
  (( $# == 1 )) || die "usage: engines.sh pid <engine>"
  local e; e=$(engine_name "$1")
  "${e}_pid" || { warn "engines.sh: $e is not running"; return 1; }
}

usage() {
  cat >&2 <<USAGE
usage: bash scripts/engines.sh up [engine...]
       bash scripts/engines.sh down [engine...]
       bash scripts/engines.sh status
       bash scripts/engines.sh pid <engine>
       bash scripts/engines.sh env [dev|test] [--group NAME]
engines: $ENGINES (default: all; es = elasticsearch)
data dir: $DATA
USAGE
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
    pg-pair) cmd_pgpair "$@" ;;
    -h|--help|help|'') usage ;;
    *) warn "engines.sh: unknown command '$cmd'"; usage ;;
  esac
}

main "$@"
