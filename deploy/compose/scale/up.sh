#!/usr/bin/env bash
# Brings up deploy/compose/scale: writes .env with a random database password the first
# time (mode 0600; no default password exists) unless DOZOR_DB_PASSWORD is set, then `docker-compose up -d`. Extra
# arguments go to docker-compose (e.g. --no-build when the images were built already).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
if [[ -z ${DOZOR_DB_PASSWORD:-} ]] && { [[ ! -f .env ]] || ! grep -q '^DOZOR_DB_PASSWORD=' .env; }; then
    umask 077
    echo "DOZOR_DB_PASSWORD=$(head -c 24 /dev/urandom | base64 | tr -d '/+=')" >>.env
    echo "wrote .env with a new database password" >&2
fi
compose=(docker-compose)
if ! command -v docker-compose >/dev/null; then compose=(docker compose); fi
exec "${compose[@]}" up -d "$@"
