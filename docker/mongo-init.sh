#!/usr/bin/env bash
# Base B's application user, created once when the mongo volume is empty: the official mongo
# image runs /docker-entrypoint-initdb.d/* only on a fresh data directory, against a temporary
# mongod on 127.0.0.1, right after creating the root user from MONGO_INITDB_ROOT_* (later
# password changes are made with db.changeUserPassword; see docs/deploy.md).
#
#   credit_app  in database credit_b, role readWrite on credit_b only (MONGO_URL, authSource=credit_b)
#
# The entrypoint *sources* this file (as the mongodb user), so it must not `exit`; a failing
# command stops the initialisation through the entrypoint's `set -e`, and the container restarts.
# The password comes from a Swarm secret and reaches mongosh through its environment: it is never
# on a command line or spliced into JavaScript.
set -euo pipefail

credit_mesh_pw_file=${MONGO_APP_PASSWORD_FILE:-/run/secrets/mongo_app_password}
if [[ ! -s $credit_mesh_pw_file ]]; then
  echo "mongo-init: the mongo_app_password secret is missing or empty ($credit_mesh_pw_file)" >&2
  false
fi

CREDIT_MESH_APP_PASSWORD=$(tr -d '\r\n' <"$credit_mesh_pw_file") \
  mongosh --host 127.0.0.1 --port 27017 --quiet --norc admin --eval '
    const password = process.env.CREDIT_MESH_APP_PASSWORD;
    if (!password) throw new Error("mongo_app_password is empty");
    db.getSiblingDB("credit_b").createUser({
      user: "credit_app",
      pwd: password,
      roles: [{ role: "readWrite", db: "credit_b" }]
    });
  '
unset credit_mesh_pw_file
echo "mongo-init: user credit_app (readWrite on credit_b) created"
