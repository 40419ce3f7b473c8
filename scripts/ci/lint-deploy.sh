#!/usr/bin/env bash
# Lints the deployment files: the Dockerfile (dockerfile-utils from the npm registry, installed
# once into $HESTIA_CI_DIR/lint; hadolint is in neither registry this CI reaches) and the
# systemd units (`systemd-analyze verify`, skipped with a message where systemd-analyze is
# missing). Verify checks that ExecStart= exists, so it runs on copies whose ExecStart= points at
# a stub; everything else in the units is verified as written.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
repo=$(cd "$(dirname "$0")/../.." && pwd)
L=$HESTIA_CI_DIR/lint
if [ ! -x "$L/node_modules/.bin/dockerfile-utils" ]; then
  mkdir -p "$L"
  npm install --prefix "$L" --no-audit --no-fund --no-save dockerfile-utils@0.16.3 >/dev/null
fi
out=$("$L/node_modules/.bin/dockerfile-utils" lint "$repo/Dockerfile")
[ -z "$out" ] || { printf '%s\n' "$out" >&2; log "FAIL: Dockerfile lint"; exit 1; }
log "Dockerfile: dockerfile-utils lint clean"

if ! command -v systemd-analyze >/dev/null; then
  log "systemd-analyze not installed: unit files not verified"
  exit 0
fi
U=$(mktemp -d)
trap 'rm -rf "$U"' EXIT
printf '#!/bin/sh\nexit 0\n' >"$U/hestia"; chmod 755 "$U/hestia"
mkdir -m 0700 "$U/run"
for f in hestia.service hestia-user.service; do
  sed "s#^ExecStart=/usr/local/bin/hestia#ExecStart=$U/hestia#" "$repo/contrib/systemd/$f" >"$U/$f"
done
systemd-analyze verify "$U/hestia.service"
XDG_RUNTIME_DIR=$U/run systemd-analyze --user verify "$U/hestia-user.service"
log "systemd units: systemd-analyze verify clean; $(systemd-analyze security --offline=true "$U/hestia.service" 2>/dev/null | tail -1 | sed 's/^→ //')"
