#!/usr/bin/env bash
# The packages, installed for real: in a Debian 12 container made here with debootstrap (no
# registry is reachable; the rootfs is cached under ~/.cache), the .deb packages of version A
# are installed, the server is started the way its unit starts it (no systemd in the
# container: same user, same command line), an agent is enrolled and run, then the packages of
# version B are installed over them with dpkg -i: the enrollment (identity), the agent's spool,
# the server's database and a locally edited configuration must all survive, and the new
# binaries must run. The .rpm packages are installed and upgraded the same way with Debian's
# rpm tool (no RED OS or ALT image here), which runs their scriptlets.
#
#   deploy/packages/test.sh DIR_WITH_VERSION_A DIR_WITH_VERSION_B
set -euo pipefail
a="$(cd "$1" && pwd)"; b="$(cd "$2" && pwd)"
cache="${DOZOR_ROOTFS_CACHE:-$HOME/.cache/dozor-debian-bookworm.tar}"
image=dozor-ci/debian-packages
if ! docker image inspect "$image" >/dev/null 2>&1; then
    if [[ ! -f $cache ]]; then
        rootfs="$(mktemp -d)"
        echo "debootstrap bookworm (once; cached in $cache)" >&2
        debootstrap --variant=minbase --include=adduser,rpm,passwd,procps,ca-certificates \
            bookworm "$rootfs" http://deb.debian.org/debian >/dev/null
        chmod 0755 "$rootfs"   # mktemp's 0700 would become the image's /
        tar -C "$rootfs" -c . >"$cache"
        rm -rf "$rootfs"
    fi
    docker import "$cache" "$image" >/dev/null
fi
name="dozor-packages-$$"
trap 'docker rm -f "$name" >/dev/null 2>&1 || true' EXIT
docker run -d --name "$name" -v "$a:/a:ro" -v "$b:/b:ro" "$image" sleep infinity >/dev/null
inside() { docker exec "$name" sh -ec "$*"; }
inside 'chmod 0755 /'   # a cached rootfs from before the chmod above

echo "== deb: install version A" >&2
inside 'dpkg -i /a/dozor_*.deb /a/dozor-agent_*.deb >/dev/null'
inside 'id dozor; stat -c "%a %U:%G %n" /var/lib/dozor /etc/dozor /etc/dozor/dozor.toml /var/lib/dozor-agent'
inside 'test "$(stat -c %a%U /var/lib/dozor)" = 700dozor && test "$(stat -c %a%U:%G /etc/dozor/dozor.toml)" = 640root:dozor && test "$(stat -c %a /var/lib/dozor-agent)" = 700'
inside 'dpkg-query -W -f="\${Conffiles}\n" dozor dozor-agent | grep -q /etc/dozor/dozor.toml'
inside 'dpkg-query -W -f="\${Conffiles}\n" dozor dozor-agent | grep -q /etc/dozor-agent/agent.toml'
inside 'test -f /lib/systemd/system/dozor.service -o -f /usr/lib/systemd/system/dozor.service'

start_server() {
    # As the unit: User=dozor, ExecStart=/usr/bin/dozor server --config /etc/dozor/dozor.toml.
    docker exec -d "$name" setpriv --reuid dozor --regid dozor --init-groups sh -c \
        'exec /usr/bin/dozor server --config /etc/dozor/dozor.toml >>/var/lib/dozor/server.log 2>&1'
    for _ in $(seq 1 60); do
        if inside 'setpriv --reuid dozor --regid dozor --init-groups dozor healthcheck -c /etc/dozor/dozor.toml' >/dev/null 2>&1; then return 0; fi
        sleep 1
    done
    inside 'tail -20 /var/lib/dozor/server.log'; echo "the server did not become ready" >&2; return 1
}
start_server
token=$(inside 'setpriv --reuid dozor --regid dozor --init-groups dozor tokens create -c /etc/dozor/dozor.toml 2>/dev/null')
inside "dozor-agent enroll --server https://127.0.0.1:8443 --token $token --ca-file /var/lib/dozor/pki/ca.crt.pem"
docker exec -d "$name" sh -c 'exec dozor-agent run --config /etc/dozor-agent/agent.toml >/var/log/agent.log 2>&1'
sleep 8
inside 'dozor-agent status --config /etc/dozor-agent/agent.toml'
inside 'pkill -TERM -x dozor-agent; pkill -TERM -x dozor; sleep 3'
inside 'ls /var/lib/dozor-agent/spool >/dev/null && test -f /var/lib/dozor/dozor.db'
before=$(inside 'sha256sum /var/lib/dozor-agent/identity/agent.json /var/lib/dozor-agent/identity/cert.pem /var/lib/dozor/pki/ca.crt.pem')
inside 'echo "# edited here" >>/etc/dozor/dozor.toml'

echo "== deb: upgrade to version B" >&2
inside 'dpkg -i /b/dozor_*.deb /b/dozor-agent_*.deb >/dev/null'
inside 'dpkg-query -W dozor dozor-agent'
after=$(inside 'sha256sum /var/lib/dozor-agent/identity/agent.json /var/lib/dozor-agent/identity/cert.pem /var/lib/dozor/pki/ca.crt.pem')
[[ $before == "$after" ]] || { echo "the upgrade changed the enrollment or the CA" >&2; exit 1; }
inside 'grep -q "# edited here" /etc/dozor/dozor.toml'
inside 'test -d /var/lib/dozor-agent/spool && test -f /var/lib/dozor/dozor.db'
start_server
inside 'dozor-agent status --config /etc/dozor-agent/agent.toml'
inside 'pkill -TERM -x dozor; sleep 2'
echo "deb: install, start, enroll, upgrade keeping enrollment, spool, data and the edited config: PASSED" >&2

echo "== rpm (Debian's rpm tool): install version A, upgrade to B, remove" >&2
inside 'dpkg --purge dozor dozor-agent >/dev/null 2>&1; rm -rf /var/lib/dozor /var/lib/dozor-agent /etc/dozor /etc/dozor-agent; userdel dozor 2>/dev/null || true; groupdel dozor 2>/dev/null || true'
inside 'rpm -i --nodeps /a/dozor-*.rpm /a/dozor-agent-*.rpm'
inside 'id dozor && test "$(stat -c %a%U /var/lib/dozor)" = 700dozor && test "$(stat -c %a%U:%G /etc/dozor/dozor.toml)" = 640root:dozor'
inside 'rpm -qc dozor | grep -q /etc/dozor/dozor.toml && rpm -qc dozor-agent | grep -q /etc/dozor-agent/agent.toml'
start_server
inside 'pkill -TERM -x dozor; sleep 2; echo "# edited here" >>/etc/dozor/dozor.toml'
inside 'rpm -U --nodeps /b/dozor-*.rpm /b/dozor-agent-*.rpm && rpm -q dozor dozor-agent'
inside 'grep -q "# edited here" /etc/dozor/dozor.toml && test -f /var/lib/dozor/dozor.db'
start_server
inside 'pkill -TERM -x dozor; sleep 2'
echo "rpm: install, start, upgrade keeping data and the edited config: PASSED" >&2
