#!/usr/bin/env bash
# Podman's Docker-compatible Engine API on a unix socket for the docker launcher tests
# (idempotent). Socket: $HESTIA_CI_DIR/podman.sock; image localhost/hestia-busybox:latest
# built locally from busybox-static (no registry access).
# Two fixes this machine needs (docs/ci-launchers.md §3): default ulimits lowered to 4096
# (root lacks CAP_SYS_RESOURCE) and the runc runtime (crun refuses hybrid cgroups).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
D=$HESTIA_CI_DIR/podman
SOCK=$HESTIA_CI_DIR/podman.sock
ensure_pkgs "podman runc /bin/catatonit /bin/busybox" podman runc catatonit busybox-static
mkdir -p "$D"
cat > "$D/containers.conf" <<CFG
[containers]
default_ulimits = ["nofile=4096:4096", "nproc=4096:4096"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
CFG
cat > "$D/storage.conf" <<CFG
[storage]
driver = "overlay"
graphroot = "$D/storage"
runroot = "$D/run"
CFG
export CONTAINERS_CONF=$D/containers.conf CONTAINERS_STORAGE_CONF=$D/storage.conf
if ! podman image exists localhost/hestia-busybox:latest; then
  R=$(mktemp -d); mkdir -p "$R"/{bin,etc,www,tmp,proc,sys,dev}
  cp /bin/busybox "$R/bin/busybox"
  for a in sh httpd ls cat echo sleep wget kill; do ln -sf busybox "$R/bin/$a"; done
  echo 'root:x:0:0:root:/root:/bin/sh' > "$R/etc/passwd"; echo 'root:x:0:' > "$R/etc/group"
  echo hi-podman > "$R/www/index.html"
  tar -C "$R" -cf "$D/busybox-rootfs.tar" . && rm -rf "$R"
  podman import --change 'CMD ["/bin/sh"]' "$D/busybox-rootfs.tar" localhost/hestia-busybox:latest >/dev/null
fi
kill_pidfile "$D/service.pid"
rm -f "$SOCK"
# Started from $D, not the caller's directory: conmon inherits the service's cwd and fails
# every container start ("Failed to get working directory") if that directory is removed
# later (e.g. a git checkout that drops scripts/ci).
(cd "$D" && exec setsid nohup podman system service --time=0 "unix://$SOCK" >"$D/service.log" 2>&1 </dev/null) &
echo $! > "$D/service.pid"
ok=
for i in $(seq 100); do
  [ "$(curl -s --unix-socket "$SOCK" http://d/_ping 2>/dev/null)" = OK ] && { ok=1; break; }
  sleep 0.1
done
[ -n "$ok" ] || { log "podman API did not answer on $SOCK; see $D/service.log"; exit 1; }
log "podman Docker API ready on $SOCK (pid $(cat "$D/service.pid"))"
