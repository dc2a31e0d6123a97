#!/usr/bin/env bash
# Stand-in images for the third-party services of deploy/compose/scale, built from this
# machine's own Debian packages because no container registry is reachable here (CI and
# air-gapped test rigs): PostgreSQL 15, Redis 7, HAProxy and clamd, each behaving as the
# official image the compose file names does in what the file uses of it (environment,
# command, health check commands, paths). They are for tests only: each carries /bin/sh
# (dash) for its entrypoint. Needs: postgresql, redis-server, haproxy, clamav-daemon installed.
#
#   deploy/compose/test/standins.sh [TAG_PREFIX]      # default prefix: dozor-ci
set -euo pipefail
prefix="${1:-dozor-ci}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# copy ROOTFS FILE...: files (symlinks resolved, kept at their path) and every library they load.
copy() {
    local rootfs=$1; shift
    local f lib
    for f in "$@"; do
        mkdir -p "$rootfs$(dirname "$f")"
        cp -L "$f" "$rootfs$f"
        if ldd "$f" >/dev/null 2>&1; then
            while read -r lib; do
                [[ -n $lib ]] || continue
                mkdir -p "$rootfs$(dirname "$lib")"
                [[ -e $rootfs$lib ]] || cp -L "$lib" "$rootfs$lib"
            done < <(ldd "$f" | awk '/=> \// { print $3 } /^\s*\// { print $1 }')
        fi
    done
}
# base ROOTFS: /bin/sh, a few tools, users, /tmp.
base() {
    local rootfs=$1
    mkdir -p "$rootfs"/{etc,tmp,bin,usr/bin}
    chmod 1777 "$rootfs/tmp"
    copy "$rootfs" /bin/dash /bin/mkdir /bin/cat /bin/chmod /bin/ls /bin/rm /usr/bin/env
    ln -s dash "$rootfs/bin/sh"
    printf 'root:x:0:0::/root:/bin/sh\npostgres:x:999:999::/var/lib/postgresql:/bin/sh\nredis:x:998:998::/data:/bin/sh\nhaproxy:x:997:997::/var/lib/haproxy:/bin/sh\nclamav:x:996:996::/var/lib/clamav:/bin/sh\n' >"$rootfs/etc/passwd"
    printf 'root:x:0:\npostgres:x:999:\nredis:x:998:\nhaproxy:x:997:\nclamav:x:996:\n' >"$rootfs/etc/group"
}
# image ROOTFS TAG CHANGE...: docker import with Dockerfile-style changes.
image() {
    local rootfs=$1 tag=$2; shift 2
    local changes=()
    for c in "$@"; do changes+=(--change "$c"); done
    tar -C "$rootfs" -c . | docker import "${changes[@]}" - "$tag" >/dev/null
    echo "built $tag" >&2
}

# --- PostgreSQL: POSTGRES_USER / POSTGRES_PASSWORD / POSTGRES_DB as the official image reads them.
pg=/usr/lib/postgresql/15
r="$work/postgres"; base "$r"
copy "$r" $(find "$pg/bin" -type f) $(find "$pg/lib" -name '*.so' -type f)
mkdir -p "$r/usr/share/postgresql" "$r/usr/share/zoneinfo"
cp -a /usr/share/postgresql/15 "$r/usr/share/postgresql/"
cp -aL /usr/share/zoneinfo/UTC /usr/share/zoneinfo/Etc "$r/usr/share/zoneinfo/" 2>/dev/null || true
mkdir -p "$r/var/lib/postgresql/data" "$r/var/run/postgresql"
chown -R 999:999 "$r/var/lib/postgresql" "$r/var/run/postgresql"
chmod 0700 "$r/var/lib/postgresql/data"
cat >"$r/entrypoint.sh" <<'SH'
#!/bin/sh
set -e
data=/var/lib/postgresql/data
if [ ! -s "$data/PG_VERSION" ]; then
    : "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD is required}"
    printf '%s\n' "$POSTGRES_PASSWORD" >/tmp/pw
    initdb -D "$data" -U "${POSTGRES_USER:-postgres}" --pwfile=/tmp/pw --auth-local=trust \
        --auth-host=scram-sha-256 --locale=C -E UTF8 >/dev/null
    rm -f /tmp/pw
    if [ -n "${POSTGRES_DB:-}" ] && [ "$POSTGRES_DB" != postgres ]; then
        echo "CREATE DATABASE \"$POSTGRES_DB\" OWNER \"${POSTGRES_USER:-postgres}\";" |
            postgres --single -D "$data" postgres >/dev/null
    fi
    echo "host all all all scram-sha-256" >>"$data/pg_hba.conf"
fi
exec postgres -D "$data" -c listen_addresses='*'
SH
chmod 0755 "$r/entrypoint.sh"
image "$r" "$prefix/postgres" "ENV PATH=$pg/bin:/usr/bin:/bin" 'ENV TZ=UTC' 'USER 999:999' \
    'VOLUME /var/lib/postgresql/data' 'ENTRYPOINT ["/entrypoint.sh"]'

# --- Redis: the compose file gives the whole command line.
r="$work/redis"; base "$r"
copy "$r" /usr/bin/redis-server /usr/bin/redis-cli
mkdir -p "$r/data"; chown 998:998 "$r/data"
image "$r" "$prefix/redis" 'USER 998:998' 'WORKDIR /data' 'VOLUME /data' 'CMD ["redis-server"]'

# --- HAProxy: the official image reads /usr/local/etc/haproxy/haproxy.cfg.
r="$work/haproxy"; base "$r"
copy "$r" /usr/sbin/haproxy
mkdir -p "$r/usr/local/etc/haproxy" "$r/var/lib/haproxy"
image "$r" "$prefix/haproxy" 'USER 997:997' \
    'CMD ["/usr/sbin/haproxy", "-W", "-db", "-f", "/usr/local/etc/haproxy/haproxy.cfg"]'

# --- clamd on TCP 3310 as clamav/clamav; its database is one signature written here (no
# freshclam without the internet): the EICAR test string's hex, under our own name.
r="$work/clamd"; base "$r"
copy "$r" /usr/sbin/clamd
mkdir -p "$r/var/lib/clamav" "$r/etc/clamav" "$r/run/clamav"
printf 'Dozor.Test.EICAR:0:*:%s\n' \
    "$(printf '%s' 'X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*' | od -An -tx1 | tr -d ' \n')" \
    >"$r/var/lib/clamav/dozor-test.ndb"
printf 'Foreground yes\nTCPSocket 3310\nTCPAddr 0.0.0.0\nDatabaseDirectory /var/lib/clamav\n' \
    >"$r/etc/clamav/clamd.conf"
chown -R 996:996 "$r/var/lib/clamav" "$r/run/clamav"
image "$r" "$prefix/clamd" 'USER 996:996' \
    'CMD ["/usr/sbin/clamd", "--config-file=/etc/clamav/clamd.conf"]'
