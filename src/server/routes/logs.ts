/**
 * A service's own output (SPEC §12), from its ring (observability/output-ring.ts):
 * - `GET /v1/services/{id}/logs?tail=N` → `{serviceId, lines: [{time, stream, text}]}`, the last
 *   N lines (default 100, at most the ring's size), oldest first;
 * - `GET /v1/services/{id}/logs/stream?tail=N` → Server-Sent Events: the last N lines (default
 *   0), then each new line as it comes, one `data: {time, stream, text}` frame per line.
 *   A client that does not read (more than MAX_LOG_BUFFERED bytes pending) is disconnected
 *   rather than buffered without bound; a comment line every HEARTBEAT_MS keeps idle streams
 *   open; gateway shutdown ends them (EventHub.track).
 */
import type { FastifyInstance } from 'fastify';
import { HestiaError, unknownServiceError } from '../../errors.ts';
import type { GatewayContext } from '../../gateway-context.ts';
import { type EventHub, HEARTBEAT_MS } from '../../observability/event-stream.ts';
import type { OutputLine, OutputReader } from '../../observability/output-ring.ts';

export const LOGS_DEFAULT_TAIL = 100;
/** Bytes a log stream may have pending before its client is dropped. */
export const MAX_LOG_BUFFERED = 256 * 1024;
/** Log streams open at once, all services together. */
export const MAX_LOG_STREAMS = 256;

interface IdParams {
  id: string;
}
interface TailQuery {
  tail?: string;
}

function parseTail(raw: string | undefined, dflt: number): number {
  if (raw === undefined || raw === '') return dflt;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) {
    throw new HestiaError('HESTIA_BAD_REQUEST', `tail must be a whole number >= 0, got ${JSON.stringify(raw)}`, {
      field: 'tail',
    });
  }
  return n;
}

function frame(line: OutputLine): string {
  return `data: ${JSON.stringify(line)}\n\n`;
}

export async function registerLogRoutes(app: FastifyInstance, ctx: GatewayContext, hub: EventHub): Promise<void> {
  let open = 0;
  const reader = (id: string): OutputReader => {
    const svc = ctx.services.get(id);
    if (!svc) throw unknownServiceError(id, ctx.services.ids());
    const out = svc.output?.();
    if (!out) throw new HestiaError('HESTIA_NOT_FOUND', `service '${id}' keeps no output`, { serviceId: id });
    return out;
  };

  app.get<{ Params: IdParams; Querystring: TailQuery }>('/v1/services/:id/logs', async (req) => {
    const out = reader(req.params.id);
    return { serviceId: req.params.id, lines: out.tail(parseTail(req.query.tail, LOGS_DEFAULT_TAIL)) };
  });

  app.get<{ Params: IdParams; Querystring: TailQuery }>('/v1/services/:id/logs/stream', async (req, reply) => {
    const out = reader(req.params.id);
    const tail = parseTail(req.query.tail, 0);
    if (req.method === 'HEAD') return reply.header('content-type', 'text/event-stream; charset=utf-8').send();
    if (open >= MAX_LOG_STREAMS) {
      throw new HestiaError('HESTIA_TOO_MANY_REQUESTS', 'too many log streams are open', {}, { 'retry-after': '5' });
    }
    reply.hijack();
    const res = reply.raw;
    res.shouldKeepAlive = false;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-accel-buffering': 'no',
    });
    req.raw.socket.setNoDelay(true);
    open++;
    let done = false;
    const write = (text: string): void => {
      if (done) return;
      if (res.writableLength > MAX_LOG_BUFFERED) {
        // A reader this far behind would make us buffer without bound: drop it (it can
        // reconnect and ask for a tail).
        finish();
        res.destroy();
        return;
      }
      res.write(text);
    };
    let head = 'retry: 3000\n: hestia log stream\n\n';
    for (const line of out.tail(tail)) head += frame(line);
    res.write(head);
    const unsubscribe = out.subscribe((line) => write(frame(line)));
    const heartbeat = setInterval(() => write(': ping\n\n'), HEARTBEAT_MS).unref();
    const untrack = hub.track(() => {
      finish();
      res.end();
    });
    function finish(): void {
      if (done) return;
      done = true;
      open--;
      unsubscribe();
      clearInterval(heartbeat);
      if (untrack) untrack();
    }
    if (untrack === false) {
      finish();
      res.end();
      return;
    }
    res.on('close', finish);
    res.on('error', finish);
  });
}
