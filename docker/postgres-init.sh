#!/usr/bin/env bash
# Base A's roles and database, created once when the postgres volume is empty: the official
# postgres image runs /docker-entrypoint-initdb.d/* only on a fresh data directory (later
# password changes are made with ALTER ROLE; see docs/deploy.md).
#
#   credit_owner  owns the database and its schema; used only by the migrations (POSTGRES_OWNER_URL)
#   credit_app    the services' role (POSTGRES_URL): CONNECT + USAGE here, table rights granted by the migrations
#
# Passwords come from Swarm secrets; psql's :'var' quotes them, so no value is spliced into SQL.
set -euo pipefail

owner_pw=$(cat "${POSTGRES_OWNER_PASSWORD_FILE:-/run/secrets/postgres_owner_password}")
app_pw=$(cat "${POSTGRES_APP_PASSWORD_FILE:-/run/secrets/postgres_app_password}")
if [[ -z $owner_pw || -z $app_pw ]]; then
  echo "postgres-init: the postgres_owner_password and postgres_app_password secrets must not be empty" >&2
  false
fi

psql -v ON_ERROR_STOP=1 -X -q --username "${POSTGRES_USER:-postgres}" --dbname "${POSTGRES_DB:-postgres}" \
  --set owner_pw="$owner_pw" --set app_pw="$app_pw" <<'SQL'
CREATE ROLE credit_owner WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'owner_pw';
CREATE ROLE credit_app WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'app_pw';
CREATE DATABASE credit OWNER credit_owner;
REVOKE ALL ON DATABASE credit FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE credit TO credit_app;
\connect credit
ALTER SCHEMA public OWNER TO credit_owner;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO credit_app;
SQL
echo "postgres-init: roles credit_owner, credit_app and database credit created"
