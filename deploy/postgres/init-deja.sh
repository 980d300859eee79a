#!/bin/sh
# Runs once, as the superuser, when the Postgres container initialises an empty data directory
# (/docker-entrypoint-initdb.d). Déjà connects as `deja`, a login role that owns its database but
# is neither superuser nor BYPASSRLS: row-level security keeps tenants apart only for such roles.
# The superuser creates the pgvector extension, which an ordinary role may not.
set -eu
: "${DEJA_DB_PASSWORD:?set DEJA_DB_PASSWORD for the deja role}"
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
     -v deja_password="$DEJA_DB_PASSWORD" <<'SQL'
CREATE ROLE deja LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE PASSWORD :'deja_password';
CREATE DATABASE deja OWNER deja;
-- Analysts' read-only role for the analytics views (sql/analyst_role.sql); members are added later.
CREATE ROLE deja_analyst NOLOGIN;
\connect deja
CREATE EXTENSION IF NOT EXISTS vector;
SQL
