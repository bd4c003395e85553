# shellcheck shell=bash
# Development secrets under $SECRETS (generated once, 0600) and the `env` command that points at them.

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
              admin_api_key pii_keys blind_index_key pseudonym_key audit_chain_keys; do
    [[ -s $SECRETS/$name ]] && continue
    case $name in
      *_password)      value=$(rand_hex 24) ;;
      admin_api_key)   value=cm_$(rand_b64url 32) ;;
      pii_keys)        value=dev1:$(rand_b64 32) ;;
      audit_chain_keys) value=chain1:$(rand_b64 32) ;;
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

# `env [dev|test] [--group NAME]`: export lines naming the secret files (never their contents).
cmd_env() {
  local group='' part mode=${1:-dev} pg=postgres_url pg_owner=postgres_owner_url mongo=mongo_url es_prefix=credit-dev keys=mesh_keys transporter=transporter
  case $mode in
    dev) ;;
    test) pg=postgres_test_url; pg_owner=postgres_test_owner_url; mongo=mongo_test_url; es_prefix=credit-test ;;
    *) die "usage: engines.sh env [dev|test] [--group NAME]" ;;
  esac
  (( $# )) && shift
  if [[ ${1:-} == --group ]]; then
    [[ " $MESH_GROUPS " == *" ${2:-} "* ]] || die "engines.sh env: --group takes one of: $MESH_GROUPS"
    keys=mesh_key_$2; transporter=transporter_$2; group=$2
  fi
  [[ -f $SECRETS/transporter ]] || warn "engines.sh: no secrets in $SECRETS yet; run: bash scripts/engines.sh up"
  # As in docker-stack.yml, no process holds both Elasticsearch's URL and the pseudonym key: base-c gets
  # no PSEUDONYM_KEY_FILE, base-c-front no ELASTICSEARCH_URL_FILE (docs/base-c.md, "Who holds what").
  local es_url=ELASTICSEARCH_URL_FILE pseudonym=PSEUDONYM_KEY_FILE
  case $group in
    base-c) pseudonym= ;;
    base-c-front) es_url= ;;
  esac
  printf 'export %s=%q\n' \
    TRANSPORTER_FILE "$SECRETS/$transporter" \
    NATS_CA_FILE "$SECRETS/nats_ca.pem" \
    POSTGRES_URL_FILE "$SECRETS/$pg" \
    POSTGRES_OWNER_URL_FILE "$SECRETS/$pg_owner" \
    MONGO_URL_FILE "$SECRETS/$mongo" \
    ${es_url:+"$es_url" "$SECRETS/elasticsearch_url"} \
    ES_INDEX_PREFIX "$es_prefix" \
    JETSTREAM_MAX_BYTES 268435456 \
    ADMIN_API_KEY_FILE "$SECRETS/admin_api_key" \
    PII_KEYS_FILE "$SECRETS/pii_keys" \
    BLIND_INDEX_KEY_FILE "$SECRETS/blind_index_key" \
    ${pseudonym:+"$pseudonym" "$SECRETS/pseudonym_key"} \
    AUDIT_CHAIN_KEYS_FILE "$SECRETS/audit_chain_keys" \
    MESH_KEYS_FILE "$SECRETS/$keys" \
    MESH_PUBLIC_KEYS_FILE "$SECRETS/mesh_public_keys" \
    CREDIT_MESH_DATA "$DATA"
  if (( CLUSTER )); then for part in $CLUSTER_PARTS; do "${part}_cluster_env" "$mode" "$group"; done; fi
}
