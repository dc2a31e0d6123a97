# dozor-agent rpm: stop and disable on removal (not on upgrade); the enrollment stays.
if [ "$1" = 0 ] && [ -d /run/systemd/system ]; then
    systemctl disable --now dozor-agent.service >/dev/null 2>&1 || :
fi
exit 0
