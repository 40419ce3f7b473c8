#!/usr/bin/env bash
# Stop the CI podman API service. Containers outlive the service (conmon keeps them), so the
# test containers (name prefix hestia-test-) are force-removed through the API first.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
D=$HESTIA_CI_DIR/podman
SOCK=$HESTIA_CI_DIR/podman.sock
if [ -S "$SOCK" ]; then
  names=$(curl -s --unix-socket "$SOCK" 'http://d/v1.41/containers/json?all=true' \
    | grep -o '"/hestia-test-[^"]*"' | tr -d '"/' || true)
  for n in $names; do curl -s --unix-socket "$SOCK" -X DELETE "http://d/v1.41/containers/$n?force=true" >/dev/null || true; done
fi
kill_pidfile "$D/service.pid"
rm -f "$SOCK"
# podman keeps a private bind mount of the overlay dir; unmount so the directory can be removed.
if mountpoint -q "$D/storage/overlay" 2>/dev/null; then umount "$D/storage/overlay" || true; fi
log "podman API stopped"
