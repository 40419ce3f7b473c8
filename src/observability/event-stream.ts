/**
 * The live lifecycle event stream (`GET /v1/events/stream`, Server-Sent Events) for the dashboard
 * and for `curl -N` users.
 *
 * Wire format (one frame per event, the same object as an item of `GET /v1/events`):
 *
 * ```
 * id: 42
 * data: {"id":42,"ts":1732600000000,"time":"2024-…Z","type":"service_ready","serviceId":"ollama","machineId":"local","details":{…}}
 *
 * ```
 *
 * - No `event:` field: every frame is a default `message`, so `EventSource.onmessage` sees all
 *   types (new types included) and clients switch on `data.type`.
 * - `id` is the event's row id in the store (absent if the store could not write it). A client
 *   that reconnects with `Last-Event-ID` (EventSource does this by itself) or `?since=ID` first
 *   gets the stored events after that id (at most REPLAY_MAX, oldest first), then live ones.
 *   The replay is read and the subscription made in the same synchronous step, so nothing falls
 *   between them.
 * - A comment line (`: ping`) every HEARTBEAT_MS keeps idle connections (and proxies) open.
 * - A client that does not read (more than MAX_BUFFERED bytes pending) is disconnected rather
 *   than buffered without bound; at most MAX_CLIENTS streams are open at once, and at most
 *   MAX_CLIENTS_PER_OWNER for one owner (an API key or dashboard user; the client address when
 *   auth is off), so one key holder cannot take every slot and lock out the dashboard.
 * - `close()` (gateway shutdown) ends every stream, so the server can close.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { HestiaEvent, StoredEvent } from './events.ts';

export const HEARTBEAT_MS = 15_000;
export const MAX_BUFFERED = 256 * 1024;
export const MAX_CLIENTS = 256;
export const MAX_CLIENTS_PER_OWNER = 16;
export const REPLAY_MAX = 1000;

/** An event as the API shows it (`GET /v1/events` items and stream frames). */
export interface ApiEvent {
  id: number | null;
  ts: number;
  time: string;
  type: string;
  serviceId: string | null;
  machineId: string | null;
  details: Record<string, unknown>;
}

export function apiEvent(ev: HestiaEvent | StoredEvent, id: number | null): ApiEvent {
  return {
    id,
    ts: ev.ts,
    time: new Date(ev.ts).toISOString(),
    type: ev.type,
    serviceId: ev.serviceId,
    machineId: ev.machineId ?? null,
    details: ev.details,
  };
}

export interface StreamFilter {
  serviceId?: string | undefined;
  type?: string | undefined;
}

interface Client {
  res: ServerResponse;
  filter: StreamFilter;
  owner: string;
}

export interface EventHubOptions {
  /** Most streams open at once (MAX_CLIENTS). */
  maxClients?: number;
  /** Most streams one owner may hold (MAX_CLIENTS_PER_OWNER). */
  maxPerOwner?: number;
}

/** Why a new stream was refused: the total cap, or the owner's own. */
export type RoomCheck = { ok: true } | { ok: false; reason: 'closed' | 'total' | 'owner'; limit: number };

function frame(ev: ApiEvent): string {
  // JSON.stringify never emits a raw newline, so one `data:` line carries the whole object.
  return ev.id === null ? `data: ${JSON.stringify(ev)}\n\n` : `id: ${ev.id}\ndata: ${JSON.stringify(ev)}\n\n`;
}

function matches(f: StreamFilter, type: string, serviceId: string | null): boolean {
  return (f.serviceId === undefined || f.serviceId === serviceId) && (f.type === undefined || f.type === type);
}

export class EventHub {
  private readonly clients = new Set<Client>();
  /** Open streams per owner (entries removed at 0, so the map is bounded by the open streams). */
  private readonly perOwner = new Map<string, number>();
  private heartbeat: NodeJS.Timeout | null = null;
  private closed = false;
  /** Other long-lived streams (a service's log stream) that `close()` must end too. */
  private readonly others = new Set<() => void>();

  private readonly maxClients: number;
  private readonly maxPerOwner: number;

  constructor(opts: EventHubOptions = {}) {
    this.maxClients = opts.maxClients ?? MAX_CLIENTS;
    this.maxPerOwner = opts.maxPerOwner ?? MAX_CLIENTS_PER_OWNER;
  }

  /** Open streams now. */
  get size(): number {
    return this.clients.size;
  }

  /** Open streams of one owner now. */
  sizeOf(owner: string): number {
    return this.perOwner.get(owner) ?? 0;
  }

  /** Whether `owner` may open another stream (its own cap, and the total). */
  checkRoom(owner: string): RoomCheck {
    if (this.closed) return { ok: false, reason: 'closed', limit: 0 };
    if (this.sizeOf(owner) >= this.maxPerOwner) return { ok: false, reason: 'owner', limit: this.maxPerOwner };
    if (this.clients.size >= this.maxClients) return { ok: false, reason: 'total', limit: this.maxClients };
    return { ok: true };
  }

  /** Fan one event out to the matching streams. `id` is its store row id (null if not stored). */
  publish(ev: HestiaEvent, id: number | null): void {
    if (this.clients.size === 0) return;
    let text: string | undefined;
    for (const c of this.clients) {
      if (!matches(c.filter, ev.type, ev.serviceId)) continue;
      text ??= frame(apiEvent(ev, id));
      this.write(c, text);
    }
  }

  /**
   * Take over `res` as an event stream: write the head, the `replay` events (oldest first), then
   * live events until the client leaves or `close()`. The caller checked auth and
   * `checkRoom(owner)`.
   */
  open(
    req: IncomingMessage,
    res: ServerResponse,
    filter: StreamFilter,
    replay: readonly ApiEvent[] = [],
    owner = '',
  ): void {
    const client: Client = { res, filter, owner };
    // The socket closes with the stream (`Connection: close`): nothing follows a stream on it, and
    // close() must leave no idle keep-alive socket behind that would hold the server open.
    res.shouldKeepAlive = false;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-accel-buffering': 'no',
    });
    // `retry` tells EventSource how long to wait before reconnecting (ms).
    let head = 'retry: 3000\n: hestia event stream\n\n';
    for (const ev of replay) head += frame(ev);
    res.write(head);
    // A stream is never "finished": Nagle would only delay frames.
    req.socket.setNoDelay(true);
    this.clients.add(client);
    this.perOwner.set(owner, this.sizeOf(owner) + 1);
    const drop = () => this.remove(client);
    res.on('close', drop);
    res.on('error', drop);
    this.heartbeat ??= setInterval(() => {
      for (const c of this.clients) this.write(c, ': ping\n\n');
    }, HEARTBEAT_MS).unref();
  }

  /**
   * Have `close()` end another kind of stream too (a service's log stream): `end` is called at
   * shutdown; the returned function forgets it (call it when that stream ends by itself).
   * False instead when the hub is closed already.
   */
  track(end: () => void): (() => void) | false {
    if (this.closed) return false;
    this.others.add(end);
    return () => this.others.delete(end);
  }

  /** End every stream and refuse new ones (gateway shutdown). */
  close(): void {
    this.closed = true;
    for (const end of [...this.others]) end();
    this.others.clear();
    for (const c of [...this.clients]) {
      this.remove(c);
      c.res.end();
    }
  }

  private write(c: Client, text: string): void {
    if (c.res.writableLength > MAX_BUFFERED) {
      // A reader this far behind would make us buffer without bound: it can reconnect with
      // Last-Event-ID and catch up from the store.
      this.remove(c);
      c.res.destroy();
      return;
    }
    c.res.write(text);
  }

  private remove(c: Client): void {
    if (!this.clients.delete(c)) return;
    const n = this.sizeOf(c.owner) - 1;
    if (n > 0) this.perOwner.set(c.owner, n);
    else this.perOwner.delete(c.owner);
    if (this.clients.size === 0 && this.heartbeat !== null) {
      clearInterval(this.heartbeat);
      this.heartbeat = null;
    }
  }
}
