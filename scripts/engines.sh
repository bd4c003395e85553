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
#   --cluster (with up, down, status, env; `pid --cluster <part> <n>`): the engines' own clusters too, on
#   loopback beside the single engines (issue 18; docs/deploy.md "Failure budgets"): `up --cluster [engine...]`
#   starts the single engines and the cluster parts (nats, elasticsearch, postgres: all, or those named),
#   `down --cluster [engine...]` stops those parts only (a plain `down` stops everything), `env --cluster`
#   prints the settings that use the NATS and Elasticsearch clusters, and the PostgreSQL pair while it runs.
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

# The cluster parts (`--cluster`). A part appends its name to CLUSTER_PARTS and defines <part>_cluster_up,
# _down, _status, _pid <n> and _env <dev|test> <group or empty> (export lines printed after the single
# engines' ones, which they override). The shared start-up wait and stop are common.sh's.
CLUSTER_PARTS=""
CLUSTER=0
# shellcheck source=engines/nats-cluster.sh
. "$ROOT/scripts/engines/nats-cluster.sh"
# shellcheck source=engines/elasticsearch-cluster.sh
. "$ROOT/scripts/engines/elasticsearch-cluster.sh"
# PostgreSQL's primary and synchronous standby (engines/postgres-pair.sh, sourced above; also `engines.sh
# pg-pair …`) are the part `postgres`. pg_auto_failover supervises each node: stop one with `pg-pair stop-node N`.
CLUSTER_PARTS+=" postgres"
postgres_cluster_up() { pgpair_install; pgpair_up; }
postgres_cluster_down() { [[ -d $PGPAIR_DIR ]] || return 0; pg_find_bin || true; pgpair_down; }
postgres_cluster_status() { pg_find_bin || true; pgpair_status; }
postgres_cluster_pid() { die "postgres-pair: no pid to kill; use: engines.sh pg-pair primary | stop-node N"; }
# Base A on the pair only while it runs (an `up --cluster nats elasticsearch` leaves it on the single server).
postgres_cluster_env() {
  if pg_find_bin >/dev/null 2>&1 && { pgpair_running 1 || pgpair_running 2; }; then pgpair_env "$1"; fi
}

# The cluster parts named among "$@" (es = elasticsearch), or all of them when none is named.
select_parts() {
  local a out=
  if (( $# == 0 )); then echo "$CLUSTER_PARTS"; return 0; fi
  for a in "$@"; do [[ $a == es ]] && a=elasticsearch; [[ " $CLUSTER_PARTS " == *" $a "* ]] && out+="$a "; done
  echo "${out% }"
}

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
  if (( CLUSTER )); then for e in $(select_parts "$@"); do "${e}_cluster_up"; done; fi
}

cmd_down() {
  local engines e reversed=
  engines=$(select_engines "$@")
  [[ -d $DATA ]] || { for e in $engines; do say "$e: not running"; done; return 0; }
  take_lock
  # The clusters (those named) with --cluster, and only them; a plain `down` stops them all too.
  if (( CLUSTER )); then for e in $(select_parts "$@"); do "${e}_cluster_down"; done; return 0; fi
  if (( $# == 0 )); then for e in $CLUSTER_PARTS; do "${e}_cluster_down"; done; fi
  # Reverse order: mongo (FerretDB) before the postgres it stores into.
  for e in $engines; do reversed="$e $reversed"; done
  for e in $reversed; do "${e}_down"; done
}

cmd_status() {
  local e
  for e in $ENGINES; do "${e}_status"; done
  if (( CLUSTER )); then for e in $CLUSTER_PARTS; do "${e}_cluster_status"; done
  elif [[ -d $PGPAIR_DIR ]] && pg_find_bin; then pgpair_status
  fi
}

# Pid of a running engine's server process (for tests that SIGSTOP/SIGCONT or kill it);
# with --cluster: `pid --cluster <part> <node>`.
cmd_pid() {
  if (( CLUSTER )); then
    (( $# == 2 )) || die "usage: engines.sh pid --cluster <part> <node> (parts:$CLUSTER_PARTS)"
    local p=$1; [[ $p == es ]] && p=elasticsearch
    [[ " $CLUSTER_PARTS " == *" $p "* ]] || die "unknown cluster part '$1' (known:$CLUSTER_PARTS)"
    "${p}_cluster_pid" "$2" || { warn "engines.sh: $p cluster node $2 is not running"; return 1; }
    return 0
  fi
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
       --cluster with up, down, status, env; bash scripts/engines.sh pid --cluster <part> <node>
engines: $ENGINES (default: all; es = elasticsearch)
cluster parts:$CLUSTER_PARTS
data dir: $DATA
USAGE
  exit 2
}

main() {
  local cmd=${1:-} a args=()
  (( $# )) && shift
  # --cluster may come anywhere after the command.
  for a in "$@"; do if [[ $a == --cluster ]]; then CLUSTER=1; else args+=("$a"); fi; done
  set -- "${args[@]}"
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
