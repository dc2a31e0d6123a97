# dozor (server) rpm: data directory and configuration owners; upgrades keep /var/lib/dozor.
install -d -o dozor -g dozor -m 0700 /var/lib/dozor
chown root:dozor /etc/dozor /etc/dozor/dozor.toml
chmod 0750 /etc/dozor
chmod 0640 /etc/dozor/dozor.toml
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || :
    if [ "$1" = 1 ]; then systemctl enable --now dozor.service >/dev/null 2>&1 || :; fi
    if [ "$1" -gt 1 ] 2>/dev/null; then systemctl try-restart dozor.service >/dev/null 2>&1 || :; fi
fi
exit 0
