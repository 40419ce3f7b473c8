#!/usr/bin/env bash
# Stop every CI back end started by setup-backends.sh (by PID file only). Keys, images and
# config stay under $HESTIA_CI_DIR so a later setup is fast.
set -uo pipefail
cd "$(dirname "$0")"
./teardown-podman.sh
./teardown-slurm.sh
./teardown-sshd.sh
