#!/usr/bin/env bash
# One entry for CI: set up every real launcher back end (sshd, Slurm, podman) on 127.0.0.1,
# idempotently, and print how long each took. Tests that find a back end missing skip (fail in CI) with
# a message; in CI this script makes them run.
set -euo pipefail
cd "$(dirname "$0")"
. ./lib.sh
t0=$(now_ms)
# One apt-get run for everything that is missing (faster than three).
pkgs=()
[ -x /usr/sbin/sshd ] || pkgs+=(openssh-server openssh-client)
command -v slurmctld >/dev/null && command -v sbatch >/dev/null && command -v munged >/dev/null || pkgs+=(slurmctld slurmd slurm-client munge)
command -v podman >/dev/null && command -v runc >/dev/null && [ -x /bin/catatonit ] && [ -x /bin/busybox ] || pkgs+=(podman runc catatonit busybox-static)
command -v curl >/dev/null || pkgs+=(curl)
if [ ${#pkgs[@]} -gt 0 ]; then ensure_pkgs "/nonexistent-force" "${pkgs[@]}"; fi
t1=$(now_ms); log "packages: $((t1 - t0)) ms"
./setup-sshd.sh;   t2=$(now_ms); log "sshd: $((t2 - t1)) ms"
./setup-slurm.sh;  t3=$(now_ms); log "slurm: $((t3 - t2)) ms"
./setup-podman.sh; t4=$(now_ms); log "podman: $((t4 - t3)) ms"
log "all back ends ready in $((t4 - t0)) ms"
