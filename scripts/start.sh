#!/usr/bin/env bash
# `npm start`: the local engines and the whole mesh in one process, the API on $PORT (default 3000).
# To run services as separate processes, see README "Running services separately".
set -euo pipefail
cd "$(dirname "$0")/.."

[ -x node_modules/.bin/moleculer-runner ] || npm ci
bash scripts/engines.sh up
# Development credentials (generated once under .data/secrets); anything set in the environment wins.
eval "$(bash scripts/engines.sh env dev)"
echo "credit-mesh: development secrets in $CREDIT_MESH_DATA/secrets (not for production); admin API key in $ADMIN_API_KEY_FILE"

npm run --silent build
node dist/scripts/migrate.js
exec node node_modules/moleculer/bin/moleculer-runner.js --config dist/moleculer.config.js dist/services
