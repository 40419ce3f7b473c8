#!/usr/bin/env bash
# A real OpenSSH server on 127.0.0.1:2222 for the ssh launcher tests (idempotent).
# Writes under $HESTIA_CI_DIR/ssh: host key, client key (authorized), pinned known_hosts,
# a second "wrong" client key (not authorized) for the auth-refused test, sshd.pid.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
D=$HESTIA_CI_DIR/ssh
ensure_pkgs "/usr/sbin/sshd ssh ssh-keygen" openssh-server openssh-client
mkdir -p "$D" && chmod 700 "$D"
[ -f "$D/ssh_host_ed25519_key" ] || ssh-keygen -q -t ed25519 -N '' -f "$D/ssh_host_ed25519_key" -C ci-host
[ -f "$D/client_key" ] || ssh-keygen -q -t ed25519 -N '' -f "$D/client_key" -C ci-client
[ -f "$D/wrong_key" ] || ssh-keygen -q -t ed25519 -N '' -f "$D/wrong_key" -C ci-wrong
install -m 600 "$D/client_key.pub" "$D/authorized_keys"
echo "[127.0.0.1]:2222 $(cut -d' ' -f1,2 "$D/ssh_host_ed25519_key.pub")" > "$D/known_hosts"
cat > "$D/sshd_config" <<CFG
Port 2222
ListenAddress 127.0.0.1
HostKey $D/ssh_host_ed25519_key
PidFile $D/sshd.pid
AuthorizedKeysFile $D/authorized_keys
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
X11Forwarding no
PrintMotd no
CFG
mkdir -p /run/sshd && chmod 755 /run/sshd   # privilege-separation dir; no init script made it
kill_pidfile "$D/sshd.pid"
/usr/sbin/sshd -t -f "$D/sshd_config"
/usr/sbin/sshd -f "$D/sshd_config" -E "$D/sshd.log"   # daemonizes; PID in $D/sshd.pid
for i in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/2222) 2>/dev/null && break; sleep 0.1; done
timeout 20 ssh -p 2222 -i "$D/client_key" -o IdentitiesOnly=yes -o BatchMode=yes \
  -o UserKnownHostsFile="$D/known_hosts" -o StrictHostKeyChecking=yes -o ConnectTimeout=5 root@127.0.0.1 true
log "sshd ready on 127.0.0.1:2222 (pid $(cat "$D/sshd.pid"))"
