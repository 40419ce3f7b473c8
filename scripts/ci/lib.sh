# Shared helpers for the CI back-end scripts (sourced, not run).
# Everything lives under $HESTIA_CI_DIR (default /tmp/hestia-ci) and binds 127.0.0.1 only.
# Daemons are tracked by PID files; teardown kills exactly those PIDs, never by name.
HESTIA_CI_DIR=${HESTIA_CI_DIR:-/tmp/hestia-ci}
export HESTIA_CI_DIR

log() { printf '[ci %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# apt-get install the given packages when any of the given commands/paths is missing.
# Usage: ensure_pkgs "cmd1 /path2 ..." pkg1 pkg2 ...
ensure_pkgs() {
  local probes=$1; shift
  local missing=0 p
  for p in $probes; do
    case $p in
      /*) [ -e "$p" ] || missing=1 ;;
      *) command -v "$p" >/dev/null 2>&1 || missing=1 ;;
    esac
  done
  [ $missing -eq 0 ] && return 0
  # Without systemd, Debian's policy-rc.d (exit 101) keeps postinst scripts from starting
  # system daemons (sshd on 0.0.0.0:22, slurmd, munged). Create it if an image lacks it.
  if [ ! -x /usr/sbin/policy-rc.d ]; then printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod 755 /usr/sbin/policy-rc.d; fi
  if [ -z "${HESTIA_CI_APT_UPDATED:-}" ]; then
    log "apt-get update"; apt-get update -qq; export HESTIA_CI_APT_UPDATED=1
  fi
  log "apt-get install $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# Kill the process named in a PID file (if alive) and wait until it is gone (bounded).
kill_pidfile() {
  local f=$1 pid i
  [ -f "$f" ] || return 0
  pid=$(cat "$f" 2>/dev/null || true)
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    # kill -0 lingers on zombies re-parented to PID 1; /proc/PID/stat state Z counts as gone.
    for i in $(seq 100); do
      [ -r "/proc/$pid/stat" ] || break
      [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" = Z ] && break
      sleep 0.1
    done
  fi
  rm -f "$f"
}

now_ms() { date +%s%3N; }
