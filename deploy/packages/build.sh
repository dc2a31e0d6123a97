#!/usr/bin/env bash
# Builds the .deb and .rpm packages of the server (`dozor`) and the agent (`dozor-agent`) from
# the release binaries (the release profile is stripped, without debug information) and
# prints their sizes against the bars (agent < 15 MB, server < 40 MB).
#
#   deploy/packages/build.sh [--version 0.1.1] [--out DIR] [--no-build]
#
# Needs cargo-deb and cargo-generate-rpm (`cargo install --locked cargo-deb cargo-generate-rpm`).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
version=""; out="$root/target/packages"; build=1
while [[ $# -gt 0 ]]; do
    case "$1" in
        --version) version="$2"; shift 2 ;;
        --out) out="$2"; shift 2 ;;
        --no-build) build=0; shift ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
cd "$root"
target="${CARGO_TARGET_DIR:-$root/target}"
if [[ $build == 1 ]]; then
    cargo build --release --locked -p dozor-cli -p dozor-agent
fi
mkdir -p "$out"
deb_version=(); rpm_version=()
if [[ -n $version ]]; then deb_version=(--deb-version "$version-1"); rpm_version=(-s "version = \"$version\""); fi
for crate in cli agent; do
    package=$([[ $crate == cli ]] && echo dozor || echo dozor-agent)
    cargo deb -p "dozor-$crate" --no-build --no-strip "${deb_version[@]}" --output "$out/" >/dev/null
    cargo generate-rpm -p "crates/$crate" --target-dir "$target" "${rpm_version[@]}" -o "$out/" >/dev/null
done
limit() { [[ $1 == dozor-agent* ]] && echo 15000000 || echo 40000000; }
status=0
for f in "$out"/*.deb "$out"/*.rpm; do
    name="$(basename "$f")"
    [[ -n $version && $name != *"$version"* ]] && continue
    size=$(stat -c %s "$f"); max=$(limit "$name")
    verdict=ok; [[ $size -lt $max ]] || { verdict="OVER $((max / 1000000)) MB"; status=1; }
    printf '%-44s %6.1f MB  %s\n' "$name" "$(echo "$size / 1000000" | bc -l)" "$verdict"
done
exit $status
