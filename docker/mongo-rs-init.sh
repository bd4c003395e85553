#!/usr/bin/env bash
# Initiates Base B's replica set `credit-b` once (the `mongo-rs-init` one-shot of docker-stack.yml):
# members mongo (member 1, which created the users on its empty volume: docker/mongo-init.sh),
# mongo-2 and mongo-3, then majority (and the journal) as the set's default write concern. On a later
# deploy it finds the set initiated and only checks the default. Any failure exits non-zero and Swarm
# runs it again (restart on failure), e.g. while the members are still starting.
# The root password comes from a Swarm secret and reaches mongosh through its environment: never on a
# command line or spliced into JavaScript.
set -euo pipefail

pw_file=${MONGO_ROOT_PASSWORD_FILE:-/run/secrets/mongo_root_password}
if [[ ! -s $pw_file ]]; then
  echo "mongo-rs-init: the mongo_root_password secret is missing or empty ($pw_file)" >&2
  exit 1
fi
CREDIT_MESH_ROOT_PASSWORD=$(tr -d '\r\n' <"$pw_file")
export CREDIT_MESH_ROOT_PASSWORD

for member in mongo mongo-2 mongo-3; do
  tries=0
  until mongosh --host "$member" --port 27017 --quiet --norc --eval 'quit(db.adminCommand({ ping: 1 }).ok === 1 ? 0 : 1)' >/dev/null 2>&1; do
    (( ++tries < 60 )) || { echo "mongo-rs-init: $member does not answer after 5 min" >&2; exit 1; }
    echo "mongo-rs-init: waiting for $member"
    sleep 5
  done
done

mongosh --host mongo --port 27017 --quiet --norc admin --eval '
  if (!db.auth("root", process.env.CREDIT_MESH_ROOT_PASSWORD)) throw new Error("root cannot log in to mongo");
  let initiated = true;
  try { rs.status(); } catch (e) { if (e.codeName !== "NotYetInitialized") throw e; initiated = false; }
  if (!initiated) {
    rs.initiate({ _id: "credit-b", members: [
      { _id: 0, host: "mongo:27017", priority: 2 },
      { _id: 1, host: "mongo-2:27017" },
      { _id: 2, host: "mongo-3:27017" }
    ] });
    print("mongo-rs-init: replica set credit-b initiated");
  }
  for (let i = 0; i < 120 && !db.hello().isWritablePrimary; i++) sleep(1000);
  if (!db.hello().isWritablePrimary) throw new Error("mongo is not the primary yet");
  db.adminCommand({ setDefaultRWConcern: 1, defaultWriteConcern: { w: "majority", j: true } });
  print("mongo-rs-init: default write concern majority");
'
