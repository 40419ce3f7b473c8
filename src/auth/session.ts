/**
 * Dashboard sessions: random ids in an HttpOnly cookie, state kept server-side in memory.
 *
 * - Ids are 32 random bytes (base64url). The store is keyed by the SHA-256 of the id, for the
 *   same reason API keys are looked up by digest (see api-keys.ts): lookup timing depends on a
 *   digest the client cannot steer, never on the id's bytes.
 * - Each session expires `ttlMs` after login (absolute, not sliding: a stolen cookie stops
 *   working at a known time). Expired sessions are dropped when seen and swept when the store
 *   is full; at most `maxSessions` exist, the oldest is evicted first, so a flood of logins (which
 *   needs the password anyway) cannot grow memory.
 * - Sessions do not survive a restart: the user logs in again. That is deliberate (nothing
 *   secret is written to disk) and cheap for a personal gateway.
 */
import { createHash, randomBytes } from 'node:crypto';

export const SESSION_COOKIE = 'hestia_session';
const DEFAULT_MAX_SESSIONS = 1_000;

export interface Session {
  username: string;
  createdAt: number;
  expiresAt: number;
}

export interface SessionStoreOptions {
  maxSessions?: number;
  now?: () => number;
}

export class SessionStore {
  readonly #sessions = new Map<string, Session>();
  readonly #max: number;
  readonly #now: () => number;

  constructor(opts: SessionStoreOptions = {}) {
    this.#max = Math.max(1, opts.maxSessions ?? DEFAULT_MAX_SESSIONS);
    this.#now = opts.now ?? Date.now;
  }

  /** Create a session; returns the id to put in the cookie (never stored in plaintext here). */
  create(username: string, ttlMs: number): { id: string; session: Session } {
    const now = this.#now();
    if (this.#sessions.size >= this.#max) this.#sweep(now);
    while (this.#sessions.size >= this.#max) {
      const oldest = this.#sessions.keys().next();
      if (oldest.done) break;
      this.#sessions.delete(oldest.value);
    }
    const id = randomBytes(32).toString('base64url');
    const session = { username, createdAt: now, expiresAt: now + ttlMs };
    this.#sessions.set(digest(id), session);
    return { id, session };
  }

  /** The live session for an id, or undefined (unknown, expired, or malformed id). */
  get(id: string): Session | undefined {
    if (!/^[A-Za-z0-9_-]{43}$/.test(id)) return undefined;
    const key = digest(id);
    const s = this.#sessions.get(key);
    if (!s) return undefined;
    if (s.expiresAt <= this.#now()) {
      this.#sessions.delete(key);
      return undefined;
    }
    return s;
  }

  destroy(id: string): void {
    this.#sessions.delete(digest(id));
  }

  get size(): number {
    return this.#sessions.size;
  }

  #sweep(now: number): void {
    for (const [k, s] of this.#sessions) if (s.expiresAt <= now) this.#sessions.delete(k);
  }
}

function digest(id: string): string {
  return createHash('sha256').update(id).digest('hex');
}

// ---------------------------------------------------------------------------------------------
// The one cookie. Parsing and serialising are written out here rather than pulled from a
// library because only one cookie with a known, URL-safe value is ever read or written.
// ---------------------------------------------------------------------------------------------

/**
 * Every value of cookie `name` in a Cookie header (RFC 6265 §5.4: `a=1; b=2`). A browser can send
 * the same name twice (cookies set for different paths or by a sibling subdomain), so all
 * candidates are returned and the caller accepts the first one that is a live session.
 * At most 8 are returned to bound the work an oversized header can cause.
 */
export function readCookieValues(header: string | string[] | undefined, name: string): string[] {
  if (header === undefined) return [];
  const text = Array.isArray(header) ? header.join('; ') : header;
  const out: string[] = [];
  for (const part of text.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() !== name) continue;
    let value = part.slice(eq + 1).trim();
    if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
    out.push(value);
    if (out.length >= 8) break;
  }
  return out;
}

/** A Cookie header without any `name=…` pair (other pairs kept in order, `; `-joined). */
export function withoutCookie(header: string | string[], name: string): string {
  const text = Array.isArray(header) ? header.join('; ') : header;
  return text
    .split(';')
    .map((p) => p.trim())
    .filter((p) => p !== '' && (p.indexOf('=') < 0 ? p : p.slice(0, p.indexOf('=')).trim()) !== name)
    .join('; ');
}

export interface CookieOptions {
  /** Seconds; 0 deletes the cookie. */
  maxAgeSeconds: number;
  secure: boolean;
  /** Lax on a host or port door, where the app must work after a top-level navigation; default Strict. */
  sameSite?: 'Strict' | 'Lax';
}

/**
 * `Set-Cookie` for the session: HttpOnly (no script can read it), SameSite=Strict (never sent on
 * a request started by another site), Path=/ (the dashboard calls /v1 as well as /ui), Secure
 * only when the request came over https (else the browser would drop it on plain http).
 */
export function sessionCookie(value: string, opts: CookieOptions): string {
  if (!/^[A-Za-z0-9_-]*$/.test(value)) throw new Error('session cookie value must be base64url');
  const parts = [
    `${SESSION_COOKIE}=${value}`,
    'Path=/',
    'HttpOnly',
    `SameSite=${opts.sameSite ?? 'Strict'}`,
    `Max-Age=${Math.max(0, Math.floor(opts.maxAgeSeconds))}`,
  ];
  if (opts.secure) parts.push('Secure');
  return parts.join('; ');
}
