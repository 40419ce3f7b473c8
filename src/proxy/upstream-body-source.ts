/**
 * The request body as undici sees it: a thin Readable that pulls from the client's
 * IncomingMessage (or, for a routed request whose body was larger than the routing cap, from
 * routing's stream that replays the read prefix and then the rest of the client's body) only
 * when undici starts writing the body upstream.
 *
 * Why not hand `req` to undici directly: undici destroys its body stream when the upstream
 * exchange fails, and destroying an unfinished IncomingMessage destroys the client's socket,
 * so the gateway could neither answer 502 nor retry. This source is what gets destroyed; `req`
 * is only paused and detached. As long as no byte has been pulled (`owner.bytesIn === 0`), a
 * fresh source over the same `req` can be handed to the next attempt (SPEC §4: a body that has
 * not started streaming may be retried; one that has is never replayed).
 *
 * Memory stays flat: a chunk is pushed only as undici reads, and `req` is paused whenever this
 * stream's small buffer is full (backpressure all the way to the client's TCP window).
 */
import { Readable } from 'node:stream';

/** Who counts the bytes (the exchange). */
export interface BodyOwner {
  bytesIn: number;
}

const kSource = Symbol('hestia.bodySource');
type SourcedRequest = Readable & { [kSource]?: UpstreamBodySource | null };

function onReqData(this: SourcedRequest, chunk: Buffer): void {
  const src = this[kSource];
  if (!src) return;
  src.owner.bytesIn += chunk.length;
  if (!src.push(chunk)) this.pause();
}

function onReqEnd(this: SourcedRequest): void {
  this[kSource]?.push(null);
}

function onReqError(this: SourcedRequest, err: Error): void {
  this[kSource]?.destroy(err);
}

export class UpstreamBodySource extends Readable {
  private attached = false;

  constructor(
    private readonly req: Readable,
    readonly owner: BodyOwner,
  ) {
    super();
  }

  override _read(): void {
    const req = this.req as SourcedRequest;
    if (!this.attached) {
      this.attached = true;
      req[kSource] = this;
      if (req.readableEnded) {
        this.push(null);
        return;
      }
      req.on('data', onReqData);
      req.on('end', onReqEnd);
      req.on('error', onReqError);
    }
    req.resume();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    const req = this.req as SourcedRequest;
    if (this.attached) {
      this.attached = false;
      if (req[kSource] === this) req[kSource] = null;
      req.off('data', onReqData);
      req.off('end', onReqEnd);
      req.off('error', onReqError);
      // Untouched body: keep it for a retry. Partly read: it can never be replayed, so let Node
      // discard the rest (a paused, half-read request would stall the client's upload).
      if (this.owner.bytesIn === 0) req.pause();
      else req.resume();
    }
    cb(err);
  }
}
