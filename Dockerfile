# Hestia container image (docs/install.md).
#
#   docker build -t hestia .
#   docker run -d --name hestia -p 127.0.0.1:8080:8080 -v hestia-data:/data hestia
#
# Everything Hestia keeps is under the one volume /data: hestia_config.yml (optional; without it
# the built-in defaults run), the SQLite database hestia.db, and strategies/ (plugins).
#
# WARNING: inside the container Hestia listens on 0.0.0.0 (HESTIA_HOST), so whoever reaches the
# published port can use every service and the control API unless auth is enabled
# (`auth.enabled: true` in hestia_config.yml or HESTIA_AUTH_ENABLED=1, then
# `docker exec hestia hestia keys create NAME`). Publish on 127.0.0.1 as above, or enable auth.
#
# BASE_IMAGE: a Debian 12 image with Node.js 20, 22 or 24 and npm under /usr/local, like the
# official node:*-bookworm-slim images. Without access to a registry, make one locally with
# scripts/ci/make-node-base.sh and pass --build-arg BASE_IMAGE=localhost/hestia-node-base:22.
# With Podman, build with --format docker, or the OCI format drops the HEALTHCHECK.
ARG BASE_IMAGE=node:22-bookworm-slim

FROM ${BASE_IMAGE} AS build
# better-sqlite3 installs a prebuilt binary when it can download one; otherwise it compiles
# SQLite from source, which needs these, and the Node headers of the image (not a download).
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
ENV npm_config_nodedir=/usr/local
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY . .
# Install scripts (better-sqlite3's binary), the dist/ build (npm run build fails loudly here,
# unlike `prepare`), then only the runtime dependencies, laid out as the npm package is.
RUN npm rebuild \
 && node scripts/build.mjs --require \
 && npm prune --omit=dev --no-audit --no-fund \
 && rm -rf node_modules/better-sqlite3/build/Release/obj* node_modules/better-sqlite3/build/Release/.deps \
      node_modules/better-sqlite3/deps node_modules/better-sqlite3/src \
 && mkdir -p /opt/hestia/scripts \
 && cp -r package.json LICENSE README.md bin dist examples node_modules /opt/hestia/ \
 && cp scripts/source-fingerprint.mjs /opt/hestia/scripts/

FROM ${BASE_IMAGE}
RUN groupadd --system --gid 10001 hestia \
 && useradd --system --uid 10001 --gid hestia --home-dir /data --no-create-home --shell /usr/sbin/nologin hestia \
 && mkdir -p /data/strategies \
 && chown -R hestia:hestia /data \
 && chmod 0700 /data
COPY --from=build /opt/hestia /opt/hestia
RUN ln -s /opt/hestia/bin/hestia.mjs /usr/local/bin/hestia
# The working directory is the volume: ./hestia_config.yml there is the config.
ENV HESTIA_HOST=0.0.0.0 \
    HESTIA_PORT=8080 \
    HESTIA_DB_PATH=/data/hestia.db \
    HESTIA_STRATEGIES_DIR=/data/strategies
WORKDIR /data
VOLUME ["/data"]
USER hestia
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.HESTIA_PORT||8080)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
ENTRYPOINT ["hestia"]
CMD ["serve"]
