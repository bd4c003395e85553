#!/usr/bin/env bash
# Zipkin, the tracing backend, locally: io.zipkin:zipkin-server (the exec jar, about 130 MB) from Maven
# Central with mvn into ~/.m2 (as scripts/engines.sh fetches Elasticsearch), run on the system's Java 17,
# spans in memory, listening on 127.0.0.1 only. test/broker/zipkin.test.ts runs one per test run; to look
# at local traces, run it and start the mesh with ZIPKIN_URL=http://127.0.0.1:9411.
#
#   bash scripts/zipkin.sh jar          fetch when missing; print the jar's path
#   bash scripts/zipkin.sh run [PORT]   fetch when missing, then run Zipkin in the foreground on 127.0.0.1:PORT (9411)
set -euo pipefail

VERSION=3.6.1
ARTIFACT=io.zipkin:zipkin-server:$VERSION:jar:exec
REPO=${M2_REPO:-$HOME/.m2/repository}
JAR=$REPO/io/zipkin/zipkin-server/$VERSION/zipkin-server-$VERSION-exec.jar

die() { echo "zipkin.sh: $*" >&2; exit 1; }

java17() {
  local java
  for java in /usr/lib/jvm/*17*/bin/java; do [[ -x $java ]] && { echo "$java"; return 0; }; done
  die "no Java 17 in /usr/lib/jvm (Debian: apt-get install openjdk-17-jre-headless)"
}

fetch() {
  [[ -s $JAR ]] && return 0
  command -v mvn >/dev/null || die "mvn is missing (it fetches Zipkin from Maven Central; Debian: apt-get install maven)"
  echo "zipkin.sh: fetching $ARTIFACT from Maven Central (about 130 MB) ..." >&2
  local log
  log=$(mktemp)
  if ! JAVA_HOME=$(dirname "$(dirname "$(java17)")") mvn -B -q dependency:get -Dartifact="$ARTIFACT" -Dtransitive=false \
       ${M2_REPO:+"-Dmaven.repo.local=$M2_REPO"} >"$log" 2>&1 || [[ ! -s $JAR ]]; then
    tail -n 20 "$log" >&2
    rm -f "$log"
    die "mvn dependency:get $ARTIFACT failed"
  fi
  rm -f "$log"
}

case ${1:-} in
  jar) fetch; echo "$JAR" ;;
  run)
    port=${2:-9411}
    [[ $port =~ ^[0-9]+$ ]] || die "not a port: $port"
    fetch
    java=$(java17)
    # In memory (STORAGE_TYPE=mem), on loopback only; no self-tracing, a small heap.
    export STORAGE_TYPE=mem SELF_TRACING_ENABLED=false
    exec "$java" -Xms64m -Xmx256m -XX:+UseSerialGC -jar "$JAR" \
      "--armeria.ports[0].ip=127.0.0.1" "--armeria.ports[0].port=$port" "--armeria.ports[0].protocols=http" \
      --logging.level.root=WARN
    ;;
  *) echo "usage: bash scripts/zipkin.sh jar | run [PORT]" >&2; exit 2 ;;
esac
