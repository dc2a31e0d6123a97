# dozor-agent rpm: the state directory (identity, spool) stays across upgrades; the unit starts
# once the host is enrolled.
install -d -m 0700 /var/lib/dozor-agent
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || :
    if [ "$1" = 1 ]; then systemctl enable dozor-agent.service >/dev/null 2>&1 || :; fi
    if [ "$1" -gt 1 ] 2>/dev/null; then systemctl try-restart dozor-agent.service >/dev/null 2>&1 || :; fi
fi
if [ ! -e /var/lib/dozor-agent/identity/agent.json ]; then
    echo "dozor-agent: enroll this host (dozor-agent enroll --server ... --token ... --ca-sha256 ...), then: systemctl start dozor-agent" >&2
fi
exit 0
