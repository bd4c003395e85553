# shellcheck shell=bash
# elasticsearch (short name es, Base C): a real Elasticsearch 8.19.21 from Maven Central's
# integ-test-zip distribution (org.elasticsearch.distribution.integ-test-zip:elasticsearch;
# ../shared/ENGINES.md): fetched with `mvn dependency:get` into ~/.m2, unzipped once into
# $DATA/elasticsearch-<version> (read-only for the server), run on the system JDK
# (no bundled JDK in this distribution).
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

ES_PORT=${ES_PORT:-9200}
ES_TRANSPORT_PORT=${ES_TRANSPORT_PORT:-9300}
ES_HEAP=${ES_HEAP:-1g}
[[ $ES_HEAP =~ ^[0-9]+[kKmMgG]$ ]] || die "ES_HEAP=$ES_HEAP: expected e.g. 512m or 1g"

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
ES_HEALTH=

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

# Any JVM is `java` (another checkout's Elasticsearch too): only the pid in our pid file counts.
elasticsearch_pid() { pid_file_pid "$ES_PID" java; }
elasticsearch_running() { elasticsearch_pid >/dev/null; }
# True when the process is stopped by a signal (SIGSTOP/SIGTSTP).
es_frozen() { [[ $(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) == T ]]; }

# Field $1 (1 http port, 2 transport port, 3 heap) of the running server's state.
es_state() { state_field elasticsearch "$ES_STATE" "$1"; }
elasticsearch_port() { port_or "$(es_state 1)" "$ES_PORT"; }

# Cluster health of the server on port $1 (empty when it does not answer in time).
es_health() {
  curl -sf --max-time "${2:-3}" "http://127.0.0.1:$1/_cluster/health?wait_for_status=yellow&timeout=1s" 2>/dev/null \
    | sed -nE 's/.*"status":"([a-z]+)".*/\1/p'
}
# Ready: our server answers yellow or green on port $1 (kept in ES_HEALTH).
es_ready() { ES_HEALTH=$(es_health "$1"); [[ -n $ES_HEALTH ]] && elasticsearch_running; }

elasticsearch_install() {
  command -v curl >/dev/null || need_packages "curl" curl
  if ! es_find_java; then
    need_packages "a Java 17 runtime (for Elasticsearch)" openjdk-17-jre-headless
    es_find_java || die "elasticsearch: no Java 17 or 21+ found in /usr/lib/jvm (set ES_JAVA_HOME)"
  fi
  need_runuser
  if (( IS_ROOT )) && ! id "$ES_USER" >/dev/null 2>&1; then
    useradd --system --user-group --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin --comment "credit-mesh local Elasticsearch" "$ES_USER"
    say "elasticsearch: created system user $ES_USER (Elasticsearch refuses to run as root)"
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

# Directories of a node ($1, default $ES_DIR) owned by the server's user; the config is copied once from the distribution.
es_dirs() {
  local d dir=${1:-$ES_DIR}
  mkdir -p "$dir"; chmod 755 "$dir"
  if [[ ! -f $dir/config/elasticsearch.yml ]]; then
    rm -rf "$dir/config.tmp"
    cp -R "$ES_HOME/config" "$dir/config.tmp"
    mv "$dir/config.tmp" "$dir/config"
  fi
  for d in config data logs run tmp; do
    mkdir -p "$dir/$d"; chmod 750 "$dir/$d"
  done
  if (( IS_ROOT )); then
    chown -R "$ES_USER:" "$dir/config" "$dir/data" "$dir/logs" "$dir/run" "$dir/tmp"
    ensure_traversable "$ES_USER" "$ES_HOME/bin"
    runuser -u "$ES_USER" -- test -r "$ES_HOME/lib" -a -x "$ES_HOME/bin/elasticsearch" -a -w "$dir/data" \
      || die "elasticsearch: user $ES_USER cannot read $ES_HOME or write $dir"
  fi
}

# Wait (bounded) for health yellow or green and print it; $1 = launcher pid or empty, $2 = port.
es_wait() {
  local rc=0
  wait_ready "$ES_WAIT_SECS" 0.5 "$1" elasticsearch_running es_ready "$2" || rc=$?
  if (( rc == 0 )); then echo "$ES_HEALTH"; return 0; fi
  log_tail "$ES_LOG"; log_tail "$ES_SERVER_LOG" 40
  (( rc == 2 )) && die "elasticsearch: exited during startup (logs: $ES_LOG, $ES_SERVER_LOG)"
  die "elasticsearch: not healthy (yellow) on 127.0.0.1:$2 within ${ES_WAIT_SECS}s (logs: $ES_LOG, $ES_SERVER_LOG)"
}

# Launch one node in the background (LAUNCHER = the launcher's pid): $1 its directory (es_dirs), $2 its pid
# file, $3 the launcher's log, $4 its heap; "$5..." its own -E settings (ports, discovery, security, names).
es_launch() {
  local dir=$1 pidfile=$2 log=$3 heap=$4; shift 4
  local -a run=() argv=(
    env -i PATH=/usr/bin:/bin HOME="$dir" LANG=C.UTF-8
    ES_JAVA_HOME="$ES_JAVA" ES_PATH_CONF="$dir/config"
    ES_TMPDIR="$dir/tmp" TMPDIR="$dir/tmp" CLI_JAVA_OPTS="-Djava.io.tmpdir=$dir/tmp"
    ES_JAVA_OPTS="-Xms$heap -Xmx$heap"
    "$ES_HOME/bin/elasticsearch" -d -p "$pidfile"
    -Ecluster.routing.allocation.disk.threshold_enabled=false
    -Enetwork.host=127.0.0.1
    -Epath.data="$dir/data"
    -Epath.logs="$dir/logs"
    -Eaction.destructive_requires_name=false
    -Ebootstrap.memory_lock=false
    "$@"
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
  # -d: the launcher exits once the node has started; the server (pid in $pidfile) stays.
  launch "$dir" "$log" "${run[@]}" "${argv[@]}"
}

elasticsearch_up() {
  ensure_dirs
  local h pid port
  if elasticsearch_running; then
    port=$(elasticsearch_port); pid=$(elasticsearch_pid)
    if es_frozen "$pid"; then
      die "elasticsearch: pid $pid is stopped by a signal (SIGSTOP); resume it: kill -CONT $pid"
    fi
    # A server still starting (or a previous up that timed out): wait for it, bounded.
    h=$(es_wait "" "$port")
    say "elasticsearch: already running on http://127.0.0.1:$port ($h)"
    note_port elasticsearch ES_PORT "$port"
    return 0
  fi
  need_free_ports elasticsearch ". Stop it or set ES_PORT / ES_TRANSPORT_PORT." "$ES_PORT" "$ES_TRANSPORT_PORT"
  es_find_java || die "elasticsearch: no Java 17 or 21+ found (set ES_JAVA_HOME)"
  es_dirs "$ES_DIR"
  rm -f "$ES_PID"
  printf '%s %s %s\n' "$ES_PORT" "$ES_TRANSPORT_PORT" "$ES_HEAP" >"$ES_STATE"
  local start=$SECONDS
  printf '\n==== %s: starting Elasticsearch %s (http %s, transport %s, heap %s)\n' \
    "$(date -u +%FT%TZ)" "$ES_VERSION" "$ES_PORT" "$ES_TRANSPORT_PORT" "$ES_HEAP" >>"$ES_LOG"
  es_launch "$ES_DIR" "$ES_PID" "$ES_LOG" "$ES_HEAP" \
    -Ediscovery.type=single-node \
    -Expack.security.enabled=false \
    -Ehttp.port="$ES_PORT" \
    -Etransport.port="$ES_TRANSPORT_PORT" \
    -Ecluster.name=credit-mesh \
    -Enode.name=local
  h=$(es_wait "$LAUNCHER" "$ES_PORT")
  say "elasticsearch: started $ES_VERSION on http://127.0.0.1:$ES_PORT in $(( SECONDS - start )) s ($h, pid $(elasticsearch_pid), logs $ES_DIR/logs)"
}

elasticsearch_down() { stop_pid_file elasticsearch "$ES_PID" java "$ES_WAIT_SECS"; }

elasticsearch_status() {
  if [[ ! -x $ES_HOME/bin/elasticsearch ]]; then say "elasticsearch  not installed ($ES_HOME)"; return 0; fi
  if elasticsearch_running; then
    local pid port h; pid=$(elasticsearch_pid); port=$(elasticsearch_port)
    if es_frozen "$pid"; then h="frozen (SIGSTOP)"; else h=$(es_health "$port" 2); h=${h:-not answering}; fi
    say "elasticsearch  running  http://127.0.0.1:$port  ($h, pid $pid, heap $(es_state 3), data $ES_DIR/data)"
  else
    say "elasticsearch  stopped  http://127.0.0.1:$ES_PORT"
  fi
}
