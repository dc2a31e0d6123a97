# dozor (server) rpm: stop and disable on removal (not on upgrade); data stays.
if [ "$1" = 0 ] && [ -d /run/systemd/system ]; then
    systemctl disable --now dozor.service >/dev/null 2>&1 || :
fi
exit 0
