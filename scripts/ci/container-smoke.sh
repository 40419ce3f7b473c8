#!/usr/bin/env bash
# Builds the container image from the Dockerfile with Podman and checks it end to end:
#   scripts/ci/container-smoke.sh
# 1. base image: localhost/hestia-node-base:22 (make-node-base.sh; no registry needed)
# 2. podman build --format docker (keeps the HEALTHCHECK) with BASE_IMAGE set to it
# 3. runs the image as its non-root user with one volume (config + database + strategies) and
#    a Docker API socket mounted at /var/run/docker.sock; /healthz answers; the image's own
#    HEALTHCHECK passes; `hestia check-config` reads the volume's config; a request to a
#    `docker`-launched service makes Hestia, inside the container, create and start a
#    container through the socket; SIGTERM stops Hestia with 0.
# Needs setup-podman.sh to have run (storage config, the busybox image). The socket is a second
# Podman API service on the same storage, made group-accessible for the image's user (as
# /var/run/docker.sock is for the docker group), so the shared CI socket stays as it is.
# Everything binds 127.0.0.1 (host network). Prints timings and the image size.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
repo=$(cd "$(dirname "$0")/../.." && pwd)
D=$HESTIA_CI_DIR/container-smoke
P=$HESTIA_CI_DIR/podman
export CONTAINERS_CONF=$P/containers.conf CONTAINERS_STORAGE_CONF=$P/storage.conf
image=localhost/hestia:smoke
name=hestia-smoke
web=hestia-smoke-web
[ -f "$CONTAINERS_CONF" ] || { log "no $CONTAINERS_CONF: run scripts/ci/setup-podman.sh first"; exit 1; }
podman image exists localhost/hestia-busybox:latest || { log "no busybox image: run scripts/ci/setup-podman.sh"; exit 1; }

cleanup() {
  podman rm -f -t 5 "$name" "$web" >/dev/null 2>&1 || true
  kill_pidfile "$D/api.pid"
}
trap cleanup EXIT
cleanup
t0=$(now_ms)
"$(dirname "$0")/make-node-base.sh" 22
t1=$(now_ms); log "base image: $((t1 - t0)) ms"

podman build --format docker --network host --build-arg BASE_IMAGE=localhost/hestia-node-base:22 \
  -t "$image" "$repo" >"$HESTIA_CI_DIR/container-build.log" 2>&1 ||
  { tail -40 "$HESTIA_CI_DIR/container-build.log" >&2; exit 1; }
t2=$(now_ms)
log "podman build: $((t2 - t1)) ms; $image is $(podman image inspect --format '{{.Size}}' "$image") bytes"

free_port() { node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }
port=$(free_port); web_port=$(free_port)
rm -rf "$D"; mkdir -p "$D/data/strategies"
cat >"$D/data/hestia_config.yml" <<YAML
services:
  web:
    base_url: http://127.0.0.1:$web_port
    health_url: http://127.0.0.1:$web_port/
    health_interval_ms: 100
    start_timeout_ms: 60000
    launcher:
      type: docker
      container: $web
      stop_timeout_s: 5
      create:
        image: localhost/hestia-busybox:latest
        cmd: [/bin/httpd, -f, -p, "127.0.0.1:{port}", -h, /www]
YAML
chown -R 10001:10001 "$D/data"; chmod 0700 "$D/data"

# A Docker API socket the image's user (uid/gid 10001) may use, like a docker group member.
(cd "$P" && exec setsid nohup podman system service --time=0 "unix://$D/api.sock" >"$D/api.log" 2>&1 </dev/null) &
echo $! >"$D/api.pid"
for _ in $(seq 100); do [ -S "$D/api.sock" ] && break; sleep 0.1; done
chgrp 10001 "$D/api.sock"; chmod 0660 "$D/api.sock"

podman run -d --name "$name" --network host --init \
  -e HESTIA_HOST=127.0.0.1 -e HESTIA_PORT="$port" \
  -v "$D/data:/data" -v "$D/api.sock:/var/run/docker.sock" "$image" >/dev/null
ok=
for _ in $(seq 300); do
  if curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; then ok=1; break; fi
  [ "$(podman inspect --format '{{.State.Running}}' "$name")" = true ] || break
  sleep 0.1
done
[ -n "$ok" ] || { podman logs "$name" | tail -20 >&2; log "FAIL: /healthz did not answer"; exit 1; }
t3=$(now_ms); log "container up, /healthz 200: $((t3 - t2)) ms"
log "process user in the container: $(podman exec "$name" id)"
[ "$(podman exec "$name" id -u)" = 10001 ] || { log "FAIL: not running as uid 10001"; exit 1; }
podman healthcheck run "$name" >/dev/null || { log "FAIL: the image's HEALTHCHECK failed"; exit 1; }
podman exec "$name" hestia check-config >/dev/null || { log "FAIL: \`hestia check-config\` in the container"; exit 1; }
log "hestia check-config in the container: ok (the volume's hestia_config.yml)"
log "HEALTHCHECK: healthy"

body=$(curl -fsS --max-time 90 "http://127.0.0.1:$port/services/web/") ||
  { podman logs "$name" | tail -20 >&2; log "FAIL: docker-launched service did not answer"; exit 1; }
[ "$body" = hi-podman ] || { log "FAIL: unexpected body: $body"; exit 1; }
t4=$(now_ms)
log "docker launcher from inside the container: $web started through the socket, answered '$body' ($((t4 - t3)) ms)"
podman exec "$name" ls -la /data

podman stop -t 30 "$name" >/dev/null
code=$(podman inspect --format '{{.State.ExitCode}}' "$name")
[ "$code" = 0 ] || { podman logs "$name" | tail -20 >&2; log "FAIL: exit code $code after SIGTERM"; exit 1; }
log "SIGTERM: exit 0"
log "PASS: container smoke test in $(($(now_ms) - t0)) ms"
