#!/usr/bin/env bash
# Stop the CI Slurm daemons (and munged, if setup-slurm.sh started it) by PID file.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
D=$HESTIA_CI_DIR/slurm
kill_pidfile "$D/slurmd.pid"
kill_pidfile "$D/slurmctld.pid"
kill_pidfile "$D/munged.pid"
log "slurm stopped"
