#!/usr/bin/env bash
# A minimal base image for Dozor's binaries, built from this machine's own files for hosts
# that cannot pull from a registry (air-gapped sites, this project's CI): the glibc shared
# libraries the given binaries load (as ldd reports them), CA certificates, /etc/passwd and
# /etc/group with the non-root user 65532 ("nonroot", as in distroless), a sticky /tmp. No
# shell, no package manager. The binaries must have been built on a machine whose glibc is
# no newer than this one's (the same machine, in CI).
#
#   deploy/docker/make-base-image.sh [--tag dozor/base:local] BINARY...
set -euo pipefail
tag=dozor/base:local
if [[ ${1:-} == --tag ]]; then tag="$2"; shift 2; fi
[[ $# -gt 0 ]] || { echo "usage: $0 [--tag TAG] BINARY..." >&2; exit 2; }
command -v docker >/dev/null || { echo "docker is not installed" >&2; exit 1; }

root="$(mktemp -d)"
chmod 0755 "$root"   # the image's / (mktemp makes it 0700: user 65532 could not enter it)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{etc,tmp,usr/local/bin,etc/ssl/certs}
chmod 1777 "$root/tmp"

# Every library a binary loads, with the dynamic loader; copied to the same path (and to the
# path its symlink names), so the loader finds them where the binaries were linked to look.
libraries() {
    ldd "$1" | awk '/=> \// { print $3 } /^\s*\// { print $1 }'
}
for binary in "$@"; do
    [[ -x $binary ]] || { echo "$binary: not an executable" >&2; exit 1; }
    if ! ldd "$binary" >/dev/null 2>&1; then continue; fi   # static: needs nothing
    while read -r library; do
        [[ -n $library ]] || continue
        for path in "$library" "$(readlink -f "$library")"; do
            mkdir -p "$root$(dirname "$path")"
            cp -L "$path" "$root$path"
        done
    done < <(libraries "$binary")
done
# Debian's merged /usr: /lib64 and /lib are links into /usr.
for link in lib lib64; do
    if [[ -L /$link && ! -e $root/$link ]]; then
        mkdir -p "$root/usr/$link"
        cp -a "$root/$link/." "$root/usr/$link/" 2>/dev/null || true
        rm -rf "${root:?}/$link"
        ln -s "usr/$link" "$root/$link"
    fi
done
if [[ -f /etc/ssl/certs/ca-certificates.crt ]]; then
    cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/"
fi
printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$root/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' >"$root/etc/group"
mkdir -p "$root/home/nonroot" && chown 65532:65532 "$root/home/nonroot"

tar -C "$root" -c . | docker import \
    --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin' \
    --change 'USER 65532:65532' \
    - "$tag" >/dev/null
echo "built $tag ($(du -sh "$root" | cut -f1) from this machine's libraries)" >&2
