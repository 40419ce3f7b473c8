#!/usr/bin/env node
// The bundled demo upstream (built-in config's `demo` service): a tiny HTTP server that takes a
// moment to boot, like a real model server, so `npm start` shows a visible cold start.
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: { port: { type: 'string', default: '18181' }, 'boot-ms': { type: 'string', default: '1500' } },
});
const port = Number(values.port);
const bootedAt = Date.now() + Number(values['boot-ms']);

const server = createServer((req, res) => {
  if (req.url === '/health') {
    const ready = Date.now() >= bootedAt;
    res.writeHead(ready ? 200 : 503, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ ready }));
    return;
  }
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ hello: 'from the demo service', pid: process.pid, path: req.url, uptime_s: process.uptime() }));
});
server.listen(port, '127.0.0.1', () => console.log(`demo service listening on 127.0.0.1:${port}, pid ${process.pid}`));
const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
