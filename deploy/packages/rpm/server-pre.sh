# dozor (server) rpm: the system user before files owned by its group are laid down.
getent group dozor >/dev/null || groupadd --system dozor
getent passwd dozor >/dev/null || useradd --system --gid dozor --home-dir /var/lib/dozor \
    --no-create-home --shell /sbin/nologin dozor
exit 0
