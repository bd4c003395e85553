#!/usr/bin/env bash
# Base C's own Elasticsearch user, so that base-c never holds the superuser `elastic` (Swarm config
# `elasticsearch_init`, run by the one-shot service elasticsearch-init at every deploy that changes it;
# docs/deploy.md). Idempotent: PUT replaces the role and sets the user's password, so a new
# elasticsearch_app_password secret is applied by the next deploy.
#
#   role credit_mesh_writer  exactly what mixins/base-c.mixin.ts and the Base C services do, on the
#                            ${ES_INDEX_PREFIX}-* indices only (lib/base-c/indices.ts):
#     cluster  cluster:monitor/health   the `health` action (_cluster/health)
#              manage_index_templates   ensureIndices puts the index templates at start
#     indices  create_index             ensureIndices creates the indices
#              view_index_metadata      ensureIndices checks that they exist
#              read                     search, msearch and point in time (activity, export, erase)
#              create_doc               bulk `create` of movements and consultations (never overwrites)
#              delete                   bulk `delete` of a subject's documents (LGPD erasure)
#              maintenance              _refresh before an erasure's delete pass (docs/erasure.md)
#   Not granted: `write` (update and overwrite documents), `manage` (mappings, settings, close),
#   `delete_index`, and anything on other indices or on the cluster's security.
#   user credit_mesh         that role; the services' URL (the elasticsearch_url secret) carries it
#
# The passwords reach curl on stdin or through a pipe, never on a command line.
set -euo pipefail

prefix=${ES_INDEX_PREFIX:?set ES_INDEX_PREFIX as for base-c}
url=${ES_URL:-http://elasticsearch-1:9200}
app_pw=$(cat /run/secrets/elasticsearch_app_password)
if [[ ! $app_pw =~ ^[A-Za-z0-9._~-]{20,}$ ]]; then
  echo "elasticsearch-init: elasticsearch_app_password must be 20 or more URL-safe characters (openssl rand -hex 32)" >&2
  exit 1
fi

# es METHOD PATH < body: a request as `elastic`; fails on any status but 2xx.
es() {
  curl -fsS -K <(printf 'user = "elastic:%s"\n' "$(cat /run/secrets/elastic_password)") \
    -X "$1" -H 'Content-Type: application/json' --data-binary @- "$url$2"
}

# Elasticsearch may still be starting: fail, and Swarm starts this task again (restart_policy on-failure).
es GET /_security/_authenticate </dev/null >/dev/null

es PUT /_security/role/credit_mesh_writer >/dev/null <<JSON
{"cluster": ["cluster:monitor/health", "manage_index_templates"],
 "indices": [{"names": ["$prefix-*"],
   "privileges": ["create_index", "view_index_metadata", "read", "create_doc", "delete", "maintenance"]}]}
JSON

printf '{"password": "%s", "roles": ["credit_mesh_writer"], "full_name": "credit-mesh Base C services"}' "$app_pw" \
  | es PUT /_security/user/credit_mesh >/dev/null
echo "elasticsearch-init: role credit_mesh_writer (indices $prefix-*) and user credit_mesh are in place"
