/**
 * `hestia agent`'s HTTP(S) API (SPEC §15; the routes are listed in remote/agent/protocol.ts).
 *
 * - Every request needs `Authorization: Bearer <token>`, compared in constant time (both sides
 *   hashed first, so neither the length nor a prefix leaks). A wrong or missing token is 401
 *   with code HESTIA_AGENT_UNAUTHORIZED, before anything else is read.
 * - Bounded everything: request bodies (MAX_BODY_BYTES, 413), env (MAX_ENV_BYTES in total and
 *   MAX_ENV_ENTRIES, 413), argv (MAX_ARGV_BYTES), running processes (the supervisor's limit,
 *   429), event subscribers (MAX_SUBSCRIBERS, 429), and each subscriber's unsent backlog.
 * - Output is paced by its readers: processes write their output to files (supervisor.ts,
 *   output-file.ts), and the agent reads them only while every output subscriber has at most
 *   SUBSCRIBER_PAUSE_BYTES unsent (it resumes on their `drain`). A slow gateway therefore slows
 *   the reading, not the agent's memory; one that does not read at all (congested for
 *   SUBSCRIBER_STALL_MS, or more than SUBSCRIBER_BACKLOG_BYTES queued) is dropped, never buffered.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Logger } from '../observability/logger.ts';
import {
  AGENT_ERROR,
  type AgentEvent,
  type AgentHealth,
  HEARTBEAT_MS,
  type StartRequest,
} from '../remote/agent/protocol.ts';
import { type GpuReader, readResources } from './resources.ts';
import { StartRefused, Supervisor } from './supervisor.ts';

export const MAX_BODY_BYTES = 256 * 1024;
export const MAX_ENV_BYTES = 128 * 1024;
export const MAX_ENV_ENTRIES = 512;
export const MAX_ARGV_BYTES = 64 * 1024;
export const MAX_SUBSCRIBERS = 16;
export const SUBSCRIBER_BACKLOG_BYTES = 1024 * 1024;
/** Output is not read while an output subscriber has more than this unsent. */
export const SUBSCRIBER_PAUSE_BYTES = 256 * 1024;
/** An output subscriber congested this long does not read: dropped (output reading resumes). */
export const SUBSCRIBER_STALL_MS = 5_000;

export interface AgentServerOptions {
  token: string;
  stateDir: string;
  log: Logger;
  version: string;
  gpu: GpuReader;
  tls?: { cert: string | Buffer; key: string | Buffer };
  maxProcesses?: number;
  heartbeatMs?: number;
}

interface Subscriber {
  res: ServerResponse;
  output: boolean;
  /** Since when its backlog has been over SUBSCRIBER_PAUSE_BYTES (epoch ms), else null. */
  congestedSince: number | null;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/**
 * How much of a too-large body the agent still reads (and throws away) after it has decided on
 * the 413. Closing a socket with unread data in it makes the kernel reset the connection, and a
 * client still sending then sees the reset instead of the 413; reading the rest first (nginx's
 * lingering close) lets it read the answer. Past this bound the connection is closed.
 */
export const MAX_DISCARD_BYTES = 16 * 1024 * 1024;

const tooLarge = () => new HttpError(413, AGENT_ERROR.tooLarge, `request body over ${MAX_BODY_BYTES} bytes`);

/** Reads the rest of a body that was refused, up to MAX_DISCARD_BYTES in all, then closes. */
function discardRest(req: IncomingMessage, seen: number): void {
  req.removeAllListeners('data');
  let size = seen;
  req.on('data', (c: Buffer) => {
    size += c.length;
    if (size > MAX_DISCARD_BYTES) req.socket.destroy();
  });
  req.resume();
}

function readBody(req: IncomingMessage): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > MAX_BODY_BYTES) {
      discardRest(req, 0);
      reject(tooLarge());
      return;
    }
    const parts: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) {
        discardRest(req, size);
        reject(tooLarge());
        return;
      }
      parts.push(c);
    });
    req.on('end', () => {
      if (size > MAX_BODY_BYTES) return;
      try {
        resolve(size === 0 ? {} : JSON.parse(Buffer.concat(parts).toString('utf8')));
      } catch {
        reject(new HttpError(400, AGENT_ERROR.badRequest, 'body is not JSON'));
      }
    });
    req.on('error', reject);
  });
}

const isStringRecord = (v: unknown): v is Record<string, string> =>
  v !== null && typeof v === 'object' && !Array.isArray(v) && Object.values(v).every((x) => typeof x === 'string');

/** Validate a start request; the message names the field. */
export function parseStartRequest(body: unknown): StartRequest {
  const bad = (m: string) => new HttpError(400, AGENT_ERROR.badRequest, m);
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw bad('body must be a JSON object');
  const b = body as Record<string, unknown>;
  if (typeof b.name !== 'string' || b.name === '' || b.name.length > 200)
    throw bad('name: a string of 1-200 characters');
  if (!Array.isArray(b.argv) || b.argv.length === 0 || !b.argv.every((a) => typeof a === 'string') || b.argv[0] === '')
    throw bad('argv: a non-empty array of strings');
  const argvBytes = (b.argv as string[]).reduce((s, a) => s + Buffer.byteLength(a) + 1, 0);
  if (argvBytes > MAX_ARGV_BYTES) throw new HttpError(413, AGENT_ERROR.tooLarge, `argv: over ${MAX_ARGV_BYTES} bytes`);
  if (b.cwd !== undefined && typeof b.cwd !== 'string') throw bad('cwd: a string');
  if (b.env !== undefined) {
    if (!isStringRecord(b.env)) throw bad('env: an object of string values');
    const entries = Object.entries(b.env);
    if (entries.length > MAX_ENV_ENTRIES)
      throw new HttpError(413, AGENT_ERROR.tooLarge, `env: over ${MAX_ENV_ENTRIES} variables`);
    const bytes = entries.reduce((s, [k, v]) => s + Buffer.byteLength(k) + Buffer.byteLength(v) + 2, 0);
    if (bytes > MAX_ENV_BYTES) throw new HttpError(413, AGENT_ERROR.tooLarge, `env: over ${MAX_ENV_BYTES} bytes`);
    if (entries.some(([k]) => k === '' || k.includes('=') || k.includes('\0')))
      throw bad('env: variable names must be non-empty, without "=" or NUL');
  }
  if (b.stop_signal !== undefined && typeof b.stop_signal !== 'string') throw bad('stop_signal: a string');
  if (
    b.stop_timeout_ms !== undefined &&
    (typeof b.stop_timeout_ms !== 'number' || !Number.isInteger(b.stop_timeout_ms) || b.stop_timeout_ms < 0)
  )
    throw bad('stop_timeout_ms: a non-negative integer');
  return {
    name: b.name,
    argv: b.argv as string[],
    ...(b.cwd !== undefined ? { cwd: b.cwd as string } : {}),
    ...(b.env !== undefined ? { env: b.env as Record<string, string> } : {}),
    ...(b.stop_signal !== undefined ? { stop_signal: b.stop_signal as string } : {}),
    ...(b.stop_timeout_ms !== undefined ? { stop_timeout_ms: b.stop_timeout_ms as number } : {}),
  };
}

export class AgentServer {
  readonly server: Server;
  readonly supervisor: Supervisor;
  private readonly subscribers = new Set<Subscriber>();
  private readonly tokenDigest: Buffer;
  private heartbeat: NodeJS.Timeout | null = null;
  /** Subscribers dropped for not reading (tests, status). */
  droppedSubscribers = 0;

  constructor(private readonly opts: AgentServerOptions) {
    if (opts.token.length === 0) throw new Error('the agent token is empty');
    this.tokenDigest = digest(opts.token);
    this.supervisor = new Supervisor({
      stateDir: opts.stateDir,
      log: opts.log,
      ...(opts.maxProcesses !== undefined ? { maxProcesses: opts.maxProcesses } : {}),
      onExit: (id, exit) => this.broadcast({ type: 'exit', id, exit }, false),
      onOutput: (id, line) => this.broadcast({ type: 'output', id, line }, true),
      outputPaused: () => this.outputCongested(),
    });
    const handler = (req: IncomingMessage, res: ServerResponse) => {
      this.handle(req, res).catch((err: unknown) => this.fail(res, err));
    };
    this.server = opts.tls
      ? createHttpsServer({ cert: opts.tls.cert, key: opts.tls.key }, handler)
      : createHttpServer(handler);
    this.server.headersTimeout = 10_000;
    this.server.requestTimeout = 30_000;
    this.server.maxHeadersCount = 64;
  }

  async listen(port: number, host: string): Promise<{ host: string; port: number }> {
    this.supervisor.adoptFromState();
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => resolve());
    });
    const addr = this.server.address();
    const hb = this.opts.heartbeatMs ?? HEARTBEAT_MS;
    this.heartbeat = setInterval(() => {
      this.broadcast({ type: 'heartbeat', at: new Date().toISOString() }, false);
      // Stalled subscribers are dropped even while no output is being read.
      this.outputCongested();
    }, hb);
    this.heartbeat.unref();
    return typeof addr === 'object' && addr ? { host: addr.address, port: addr.port } : { host, port };
  }

  /** Stop serving; the managed processes keep running (the next agent re-adopts them). */
  async close(): Promise<void> {
    if (this.heartbeat) clearInterval(this.heartbeat);
    for (const s of this.subscribers) s.res.destroy();
    this.subscribers.clear();
    this.supervisor.close();
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  get subscriberCount(): number {
    return this.subscribers.size;
  }

  private authorized(req: IncomingMessage): boolean {
    const h = req.headers.authorization ?? '';
    const m = /^Bearer (.+)$/i.exec(h);
    return timingSafeEqual(digest(m?.[1] ?? ''), this.tokenDigest) && m !== null;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (!this.authorized(req)) {
      req.resume();
      throw new HttpError(401, AGENT_ERROR.unauthorized, 'missing or wrong agent token');
    }
    const url = new URL(req.url ?? '/', 'http://agent');
    const path = url.pathname;
    const method = req.method ?? 'GET';
    if (method === 'GET' && path === '/v1/health') {
      const body: AgentHealth = {
        ok: true,
        agent: 'hestia',
        version: this.opts.version,
        processes: this.supervisor.runningCount,
      };
      return sendJson(res, 200, body);
    }
    if (method === 'GET' && path === '/v1/resources') return sendJson(res, 200, await readResources(this.opts.gpu));
    if (method === 'GET' && path === '/v1/events')
      return this.subscribe(req, res, url.searchParams.get('output') === '1');
    if (path === '/v1/processes') {
      if (method === 'GET') return sendJson(res, 200, { processes: this.supervisor.list() });
      if (method === 'POST') {
        const start = parseStartRequest(await readBody(req));
        try {
          return sendJson(res, 201, await this.supervisor.start(start));
        } catch (err) {
          if (err instanceof StartRefused) {
            const status = err.code === 'tooMany' ? 429 : err.code === 'badRequest' ? 400 : 422;
            throw new HttpError(status, AGENT_ERROR[err.code], err.message);
          }
          throw err;
        }
      }
    }
    const m = /^\/v1\/processes\/([\w-]{1,64})(\/stop|\/output)?$/.exec(path);
    if (m) {
      const id = m[1] as string;
      const notFound = () => new HttpError(404, AGENT_ERROR.notFound, `no process ${id} on this agent`);
      if (method === 'GET' && !m[2]) {
        const p = this.supervisor.get(id);
        if (!p) throw notFound();
        return sendJson(res, 200, p);
      }
      if (method === 'POST' && m[2] === '/stop') {
        req.resume();
        const p = await this.supervisor.stop(id);
        if (!p) throw notFound();
        return sendJson(res, 200, p);
      }
      if (method === 'GET' && m[2] === '/output') {
        const t = url.searchParams.get('tail');
        const lines = this.supervisor.output(id, t === null ? undefined : Math.max(0, Number(t) || 0));
        if (!lines) throw notFound();
        return sendJson(res, 200, { lines });
      }
    }
    req.resume();
    throw new HttpError(404, AGENT_ERROR.notFound, `no route ${method} ${path}`);
  }

  private subscribe(req: IncomingMessage, res: ServerResponse, output: boolean): void {
    if (this.subscribers.size >= MAX_SUBSCRIBERS) {
      throw new HttpError(429, AGENT_ERROR.tooMany, `too many event subscribers (${MAX_SUBSCRIBERS})`);
    }
    res.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store' });
    const sub: Subscriber = { res, output, congestedSince: null };
    this.subscribers.add(sub);
    res.on('drain', () => {
      sub.congestedSince = null;
      this.supervisor.kickOutput();
    });
    const drop = () => this.subscribers.delete(sub);
    req.on('close', drop);
    res.on('close', drop);
    res.on('error', drop);
    this.write(sub, { type: 'hello', processes: this.supervisor.list() });
  }

  /**
   * Whether output reading should wait: an output subscriber has more than
   * SUBSCRIBER_PAUSE_BYTES unsent. One congested for SUBSCRIBER_STALL_MS is dropped here (the
   * readers ask again at least once a second, and so does the heartbeat).
   */
  private outputCongested(): boolean {
    const now = Date.now();
    let congested = false;
    for (const s of this.subscribers) {
      if (!s.output || s.res.writableLength <= SUBSCRIBER_PAUSE_BYTES) {
        s.congestedSince = null;
        continue;
      }
      s.congestedSince ??= now;
      if (now - s.congestedSince >= SUBSCRIBER_STALL_MS) this.drop(s);
      else congested = true;
    }
    return congested;
  }

  private drop(s: Subscriber): void {
    this.subscribers.delete(s);
    this.droppedSubscribers++;
    this.opts.log.warn({ event_type: 'agent_subscriber_dropped' }, 'dropped an event subscriber that does not read');
    s.res.destroy();
  }

  private broadcast(ev: AgentEvent, isOutput: boolean): void {
    for (const s of this.subscribers) if (!isOutput || s.output) this.write(s, ev);
  }

  private write(s: Subscriber, ev: AgentEvent): void {
    if (s.res.writableLength > SUBSCRIBER_BACKLOG_BYTES) {
      // A subscriber that does not read is dropped, never buffered without bound.
      this.drop(s);
      return;
    }
    s.res.write(`${JSON.stringify(ev)}\n`);
  }

  private fail(res: ServerResponse, err: unknown): void {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    if (err instanceof HttpError) {
      // A refused body is still being read (discardRest): the connection stays open for it,
      // unless it declared more than the agent will read.
      const declared = Number(res.req.headers['content-length'] ?? 0);
      res.setHeader('connection', err.status === 413 && declared > MAX_DISCARD_BYTES ? 'close' : 'keep-alive');
      sendJson(res, err.status, { error: err.message, code: err.code });
      return;
    }
    this.opts.log.error({ event_type: 'agent_error', err: String(err) }, 'agent request failed');
    sendJson(res, 500, { error: 'internal error', code: 'HESTIA_AGENT_INTERNAL' });
  }
}
