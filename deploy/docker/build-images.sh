#!/usr/bin/env bash
# Builds the server and agent images from binaries built outside Docker (Dockerfile.binaries).
#
#   deploy/docker/build-images.sh [--bin-dir DIR] [--agent-bin FILE] [--base IMAGE] [--tag TAG]
#
#   --bin-dir    where `dozor` and `dozor-agent` are (default: target/release)
#   --agent-bin  another dozor-agent (e.g. the static x86_64-unknown-linux-musl build, which
#                is put on an empty image: `scratch`, no libc at all)
#   --base       base image with glibc and user 65532 (default: gcr.io/distroless/cc-debian12:nonroot;
#                without a registry: dozor/base:local from make-base-image.sh)
#   --tag        image tag (default: dev) → dozor/server:TAG, dozor/agent:TAG
#   --strip      strip the copies put in the images (debug builds carry line tables)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
bin_dir="$root/target/release"; agent_bin=""; base="gcr.io/distroless/cc-debian12:nonroot"; tag=dev; strip=0
while [[ $# -gt 0 ]]; do
    case "$1" in
        --bin-dir) bin_dir="$2"; shift 2 ;;
        --agent-bin) agent_bin="$2"; shift 2 ;;
        --base) base="$2"; shift 2 ;;
        --tag) tag="$2"; shift 2 ;;
        --strip) strip=1; shift ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
agent_bin="${agent_bin:-$bin_dir/dozor-agent}"
for f in "$bin_dir/dozor" "$agent_bin"; do
    [[ -x $f ]] || { echo "$f: no such executable (build it first: cargo build --release -p dozor-cli -p dozor-agent)" >&2; exit 1; }
done

context="$(mktemp -d)"
trap 'rm -rf "$context"' EXIT
cp "$bin_dir/dozor" "$context/dozor"
cp "$agent_bin" "$context/dozor-agent"
mkdir "$context/empty"
if [[ $strip == 1 ]]; then strip "$context/dozor" "$context/dozor-agent"; fi
cp "$here/Dockerfile.binaries" "$context/Dockerfile"
# A static agent goes on an empty image: no libc, no files but its own.
agent_base="$base"
if file -L "$agent_bin" | grep -q 'statically linked\|static-pie linked'; then agent_base=scratch; fi
for target in server agent; do
    docker build -q --build-arg "BASE=$base" --build-arg "AGENT_BASE=$agent_base" \
        --target "$target" -t "dozor/$target:$tag" "$context" >/dev/null
    echo "built dozor/$target:$tag ($(docker image inspect -f '{{.Size}}' "dozor/$target:$tag" | numfmt --to=iec))" >&2
done
