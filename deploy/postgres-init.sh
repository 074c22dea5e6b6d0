#!/bin/sh
# Mattermost's database next to OpenOps' one: the postgres image creates only POSTGRES_DB
# (openops, owned by POSTGRES_USER openops). Mounted into /docker-entrypoint-initdb.d/, this runs
# once, when the data volume is first initialised. It is idempotent; on a volume created before
# it existed, run it by hand:
#   docker compose exec postgres sh /docker-entrypoint-initdb.d/10-mattermost.sh
set -e

: "${MM_DB_PASSWORD:?MM_DB_PASSWORD is not set}"

psql -v ON_ERROR_STOP=1 -v mm_password="$MM_DB_PASSWORD" \
     --username "${POSTGRES_USER:-postgres}" --dbname "${POSTGRES_DB:-postgres}" <<'SQL'
SELECT 'CREATE ROLE mmuser LOGIN'
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'mmuser')\gexec
ALTER ROLE mmuser WITH LOGIN PASSWORD :'mm_password';
SELECT 'CREATE DATABASE mattermost OWNER mmuser'
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'mattermost')\gexec
ALTER DATABASE mattermost OWNER TO mmuser;
GRANT ALL PRIVILEGES ON DATABASE mattermost TO mmuser;
SQL
