# shellcheck shell=bash
# The Elasticsearch part of `--cluster` (issue 18): three nodes of the same distribution as elasticsearch.sh
# (es_launch), all master-eligible and data nodes, beside the single node the other tests keep using. Node i
# (1..3) listens on ES_PORT+i (HTTP) and ES_TRANSPORT_PORT+i (transport), heap ES_CLUSTER_HEAP (256m each: the
# three fit beside everything else on a 2-core, 24 GiB machine).
# Transport TLS between the nodes, as in the stack: security is on, with a certificate of a development CA
# of their own (both ways, verification_mode certificate: every node uses the same certificate here).
# HTTP stays plain on 127.0.0.1, and, as on the single node (security off there), needs no credential: requests
# without one act as the anonymous user, given the superuser role. The stack instead has users and passwords
# (docker/elasticsearch-init.sh); that part is not reproduced here.
#   $DATA/es-cluster/n<i>/{config,data,logs,run,tmp}   $DATA/es-cluster/tls (the CA)   log: $LOG/es-cluster-<i>.log
CLUSTER_PARTS+=" elasticsearch"

ES_CLUSTER_NODES=3
ES_CLUSTER_HEAP=${ES_CLUSTER_HEAP:-256m}
[[ $ES_CLUSTER_HEAP =~ ^[0-9]+[kKmMgG]$ ]] || die "ES_CLUSTER_HEAP=$ES_CLUSTER_HEAP: expected e.g. 256m"
ES_CLUSTER_DIR=$DATA/es-cluster

esc_dir() { echo "$ES_CLUSTER_DIR/n$1"; }
esc_pid() { pid_file_pid "$(esc_dir "$1")/run/elasticsearch.pid" java; }
esc_running() { esc_pid "$1" >/dev/null; }
# Node $1's HTTP port: the one it was started with (its state file) while it runs, else the requested one.
esc_port() {
  local p=
  if esc_running "$1" && [[ -r $(esc_dir "$1")/state ]]; then p=$(cut -d' ' -f1 "$(esc_dir "$1")/state"); fi
  port_or "$p" "$(( ES_PORT + $1 ))"
}

# The development CA and the nodes' transport certificate (made once), copied into each node's config
# directory (Elasticsearch reads key material only from there).
esc_tls() {
  local dir=$ES_CLUSTER_DIR/tls
  ( umask 077; mkdir -p "$dir" )
  [[ -s $dir/node.pem ]] && return 0
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 -subj "/CN=credit-mesh Elasticsearch transport CA" \
    -keyout "$dir/ca.key" -out "$dir/ca.pem" 2>/dev/null || die "es-cluster: openssl could not make the development CA"
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=credit-mesh-es" \
    -keyout "$dir/node.key" -out "$dir/node.csr" 2>/dev/null || die "es-cluster: openssl could not make the node key"
  openssl x509 -req -in "$dir/node.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial -days 3650 -out "$dir/node.pem" \
    -extfile <(printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n') 2>/dev/null \
    || die "es-cluster: openssl could not sign the node certificate"
}

esc_node_certs() {
  local certs; certs=$(esc_dir "$1")/config/certs
  mkdir -p "$certs"
  cp "$ES_CLUSTER_DIR/tls/ca.pem" "$ES_CLUSTER_DIR/tls/node.pem" "$ES_CLUSTER_DIR/tls/node.key" "$certs/"
  chmod 750 "$certs"; chmod 640 "$certs"/*
  if (( IS_ROOT )); then chown -R "$ES_USER:" "$certs"; fi
}

# The first start bootstraps the cluster from node 1 alone (cluster.initial_master_nodes=c1): three JVMs electing
# a first master together on two busy cores took minutes of failed elections; the others join it, and
# Elasticsearch grows the voting configuration to all three by itself (the stack names all three: docker-stack.yml).
ES_CLUSTER_WAIT_SECS=300

# Ready: node 1 reports every node in the cluster and health yellow or green.
esc_ready() {
  local body
  body=$(curl -sf --max-time 3 "http://127.0.0.1:$1/_cluster/health?wait_for_nodes=$ES_CLUSTER_NODES&wait_for_status=yellow&timeout=1s" 2>/dev/null) || return 1
  [[ $body == *'"timed_out":false'* ]]
}
esc_any_running() { local i; for (( i = 1; i <= ES_CLUSTER_NODES; i++ )); do esc_running "$i" && return 0; done; return 1; }

elasticsearch_cluster_up() {
  local i seeds="" dir start=$SECONDS rc=0
  elasticsearch_install
  es_find_java || die "es-cluster: no Java 17 or 21+ found (set ES_JAVA_HOME)"
  ( umask 022; mkdir -p "$ES_CLUSTER_DIR" )
  esc_tls
  for (( i = 1; i <= ES_CLUSTER_NODES; i++ )); do seeds+="127.0.0.1:$(( ES_TRANSPORT_PORT + i )),"; done
  for (( i = 1; i <= ES_CLUSTER_NODES; i++ )); do
    dir=$(esc_dir "$i")
    if esc_running "$i"; then
      es_frozen "$(esc_pid "$i")" && die "es-cluster: node $i (pid $(esc_pid "$i")) is stopped by a signal; resume it: kill -CONT $(esc_pid "$i")"
      continue
    fi
    need_free_ports "es-cluster node $i" ". Stop it or set ES_PORT / ES_TRANSPORT_PORT (node i uses each + i)." \
      "$(( ES_PORT + i ))" "$(( ES_TRANSPORT_PORT + i ))"
    es_dirs "$dir"
    esc_node_certs "$i"
    rm -f "$dir/run/elasticsearch.pid"
    printf '%s %s %s\n' "$(( ES_PORT + i ))" "$(( ES_TRANSPORT_PORT + i ))" "$ES_CLUSTER_HEAP" >"$dir/state"
    printf '\n==== %s: starting Elasticsearch %s cluster node %s (http %s, transport %s, heap %s)\n' \
      "$(date -u +%FT%TZ)" "$ES_VERSION" "$i" "$(( ES_PORT + i ))" "$(( ES_TRANSPORT_PORT + i ))" "$ES_CLUSTER_HEAP" >>"$LOG/es-cluster-$i.log"
    es_launch "$dir" "$dir/run/elasticsearch.pid" "$LOG/es-cluster-$i.log" "$ES_CLUSTER_HEAP" \
      -Ecluster.name=credit-mesh-cluster \
      -Enode.name="c$i" \
      -Ehttp.port="$(( ES_PORT + i ))" \
      -Etransport.port="$(( ES_TRANSPORT_PORT + i ))" \
      -Ediscovery.seed_hosts="${seeds%,}" \
      -Ecluster.initial_master_nodes=c1 \
      -Expack.security.enabled=true \
      -Expack.security.http.ssl.enabled=false \
      -Expack.security.transport.ssl.enabled=true \
      -Expack.security.transport.ssl.verification_mode=certificate \
      -Expack.security.transport.ssl.key=certs/node.key \
      -Expack.security.transport.ssl.certificate=certs/node.pem \
      -Expack.security.transport.ssl.certificate_authorities=certs/ca.pem \
      -Expack.security.authc.anonymous.username=credit_mesh_local \
      -Expack.security.authc.anonymous.roles=superuser \
      -Expack.security.authc.anonymous.authz_exception=true
  done
  # Three JVMs starting at once on two cores.
  wait_ready "$ES_CLUSTER_WAIT_SECS" 1 "" esc_any_running esc_ready "$(esc_port 1)" || rc=$?
  if (( rc != 0 )); then
    for (( i = 1; i <= ES_CLUSTER_NODES; i++ )); do log_tail "$LOG/es-cluster-$i.log" 10; log_tail "$(esc_dir "$i")/logs/credit-mesh-cluster.log" 20; done
    die "es-cluster: $ES_CLUSTER_NODES nodes not together (health yellow) within ${ES_CLUSTER_WAIT_SECS}s (logs: $ES_CLUSTER_DIR/n*/logs)"
  fi
  write_secret elasticsearch_cluster_url "$(elasticsearch_cluster_urls)"
  say "es-cluster: $ES_CLUSTER_NODES nodes on $(elasticsearch_cluster_urls) in $(( SECONDS - start )) s (transport TLS, heap $ES_CLUSTER_HEAP each)"
}

elasticsearch_cluster_down() {
  local i
  for (( i = 1; i <= ES_CLUSTER_NODES; i++ )); do
    stop_pid_file "es-cluster node $i" "$(esc_dir "$i")/run/elasticsearch.pid" java "$ES_WAIT_SECS"
  done
}

elasticsearch_cluster_status() {
  local i
  for (( i = 1; i <= ES_CLUSTER_NODES; i++ )); do
    if esc_running "$i"; then say "es-cluster/$i  running  http://127.0.0.1:$(esc_port "$i")  (pid $(esc_pid "$i"), heap $ES_CLUSTER_HEAP)"
    else say "es-cluster/$i  stopped  http://127.0.0.1:$(esc_port "$i")"
    fi
  done
}

elasticsearch_cluster_pid() {
  if ! [[ ${1:-} =~ ^[1-9]$ ]] || (( $1 > ES_CLUSTER_NODES )); then die "es-cluster: no node '${1:-}' (1-$ES_CLUSTER_NODES)"; fi
  esc_pid "$1"
}

elasticsearch_cluster_urls() {
  local i urls=()
  for (( i = 1; i <= ES_CLUSTER_NODES; i++ )); do urls+=("http://127.0.0.1:$(esc_port "$i")"); done
  (IFS=,; echo "${urls[*]}")
}

# `env --cluster`: every node's URL, one replica of each Base C index, writes waiting for both copies.
elasticsearch_cluster_env() {
  [[ -f $SECRETS/elasticsearch_cluster_url ]] || warn "engines.sh: no cluster secrets in $SECRETS yet; run: bash scripts/engines.sh up --cluster"
  printf 'export %s=%q\n' ELASTICSEARCH_URL_FILE "$SECRETS/elasticsearch_cluster_url" ES_REPLICAS 1 ES_WAIT_FOR_ACTIVE_SHARDS all
}
