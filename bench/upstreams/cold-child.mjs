#!/usr/bin/env node
/**
 * The cold-start child: the program the gateway's `process` launcher starts on the first
 * request. It records, from its own side, what the benchmark needs to judge the start:
 *
 * - its PID, appended to --pid-file at once (so the harness counts launches, and can kill
 *   strays by PID);
 * - JSON lines in --events-file: `boot`, `ready` (the moment /health starts answering 200,
 *   after --boot-ms), `health_2xx` (the first 200 it actually sent), `first_request` (the first
 *   non-health request, i.e. when the gateway began forwarding), `exit` (SIGTERM/SIGINT
 *   received, just before exiting); `boot` carries `spawned`, the process's own start time
 *   (performance.timeOrigin);
 * - on GET /__flush (called by the harness directly, not through the gateway): the arrival
 *   time of every forwarded request, and the number of health probes it answered.
 *
 * Times are wall-clock milliseconds with sub-ms resolution (performance.timeOrigin + now()),
 * comparable with the harness's clock on the same machine.
 *
 * Usage: node cold-child.mjs --port P --pid-file F --events-file E [--boot-ms 500]
 *        [--max-lifetime-s 300]
 */
import { appendFileSync } from 'node:fs';
import http from 'node:http';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    port: { type: 'string' },
    'pid-file': { type: 'string' },
    'events-file': { type: 'string' },
    'boot-ms': { type: 'string', default: '500' },
    'max-lifetime-s': { type: 'string', default: '300' },
  },
});
const now = () => performance.timeOrigin + performance.now();
const event = (type, extra = {}) =>
  appendFileSync(values['events-file'], `${JSON.stringify({ type, t: now(), pid: process.pid, ...extra })}\n`);

appendFileSync(values['pid-file'], `${process.pid}\n`);
event('boot', { spawned: performance.timeOrigin });

const BODY = Buffer.from('{"ok":true,"service":"cold"}');
let ready = false;
const probes = { before: 0, after: 0, times: [] };
const connections = [];
let sentFirst2xx = false;
const arrivals = [];

const server = http.createServer((req, res) => {
  if (req.url === '/health') {
    probes.times.push([now(), ready ? 200 : 503]);
    if (!ready) {
      probes.before++;
      res.writeHead(503, { 'content-type': 'text/plain' }).end('booting');
      return;
    }
    probes.after++;
    res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
    if (!sentFirst2xx) {
      sentFirst2xx = true;
      event('health_2xx');
    }
    return;
  }
  if (req.url === '/__flush') {
    event('arrivals', { arrivals, probes, connections });
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ n: arrivals.length }));
    return;
  }
  const t = now();
  if (arrivals.length === 0) event('first_request');
  arrivals.push(t);
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': BODY.length });
  res.end(BODY);
});
server.keepAliveTimeout = 60_000;
// When each connection was accepted: with many at once, the listen backlog shows up here.
server.on('connection', () => connections.push(now()));

// Listen at once (probes get 503 while "booting"), so the moment of readiness is ours to define
// and not blurred by connection-refused retries.
server.listen(Number(values.port), '127.0.0.1', () => {
  setTimeout(() => {
    ready = true;
    event('ready');
  }, Number(values['boot-ms']));
});

const bye = () => process.exit(0);
const stopped = () => {
  event('exit');
  bye();
};
process.on('SIGTERM', stopped);
process.on('SIGINT', stopped);
setTimeout(bye, Number(values['max-lifetime-s']) * 1000).unref();
