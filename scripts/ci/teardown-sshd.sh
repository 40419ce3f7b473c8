#!/usr/bin/env bash
# Stop the CI sshd started by setup-sshd.sh (by its PID file only).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
kill_pidfile "$HESTIA_CI_DIR/ssh/sshd.pid"
log "sshd stopped"
