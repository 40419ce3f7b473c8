/**
 * `POST /v1/requests` output: how an upstream response becomes `{status, headers, body}`.
 * Pure functions over the collected bytes.
 *
 * - `body` is `null` when the upstream sent no bytes.
 * - JSON (`application/json`, `*+json`): the parsed value; if it does not parse, treated as text.
 * - Text (`text/*`, `*+xml`, `application/xml`, `javascript`, `x-www-form-urlencoded`,
 *   `x-ndjson`, `yaml`, `csv`, `graphql`): a string, decoded with the response's charset
 *   (UTF-8 when none or unknown).
 * - No Content-Type: text when the bytes are valid UTF-8 without NUL, else binary.
 * - Anything else (declared binary: images, `application/octet-stream`, …), and text that is not
 *   valid in its charset: base64, with `bodyEncoding: "base64"` beside it.
 * - `headers`: upstream end-to-end headers, names lower-case, one string each; repeated headers
 *   are joined with `, ` except `set-cookie`, joined with `\n` (cookie dates contain commas).
 */
import type { IncomingHttpHeaders } from 'node:http';
import { TextDecoder } from 'node:util';

export interface DispatchResponse {
  status: number;
  headers: Record<string, string>;
  body: unknown;
  bodyEncoding?: 'base64';
}

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
]);

const TEXTUAL =
  /^(text\/|application\/(xml|javascript|ecmascript|x-www-form-urlencoded|x-ndjson|ndjson|yaml|x-yaml|csv|graphql|sql)$)|\+xml$/;
const JSONISH = /^application\/(json|[^;/]+\+json)$/;

export function flattenHeaders(headers: IncomingHttpHeaders | Record<string, string | string[] | undefined>) {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    const lower = name.toLowerCase();
    if (value === undefined || HOP_BY_HOP.has(lower)) continue;
    out[lower] = Array.isArray(value) ? value.join(lower === 'set-cookie' ? '\n' : ', ') : String(value);
  }
  return out;
}

export function encodeResponseBody(
  contentType: string | undefined,
  bytes: Buffer,
): { body: unknown; bodyEncoding?: 'base64' } {
  if (bytes.length === 0) return { body: null };
  const [mimeRaw = '', ...params] = (contentType ?? '').split(';');
  const mime = mimeRaw.trim().toLowerCase();
  const charset = params
    .map((p) => p.trim().toLowerCase())
    .find((p) => p.startsWith('charset='))
    ?.slice('charset='.length)
    .replace(/"/g, '');

  if (JSONISH.test(mime)) {
    const text = decodeText(bytes, charset);
    if (text !== null) {
      try {
        return { body: JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text) as unknown };
      } catch {
        return { body: text };
      }
    }
    return base64(bytes);
  }
  if (TEXTUAL.test(mime)) {
    const text = decodeText(bytes, charset);
    return text === null ? base64(bytes) : { body: text };
  }
  if (mime === '') {
    const text = decodeText(bytes, undefined);
    return text === null || text.includes('\0') ? base64(bytes) : { body: text };
  }
  return base64(bytes);
}

function base64(bytes: Buffer): { body: string; bodyEncoding: 'base64' } {
  return { body: bytes.toString('base64'), bodyEncoding: 'base64' };
}

/** Decode strictly; null when the bytes are not valid in the charset. Unknown charsets are read as UTF-8. */
function decodeText(bytes: Buffer, charset: string | undefined): string | null {
  let decoder: TextDecoder;
  try {
    decoder = new TextDecoder(charset ?? 'utf-8', { fatal: true });
  } catch {
    decoder = new TextDecoder('utf-8', { fatal: true });
  }
  try {
    return decoder.decode(bytes);
  } catch {
    return null;
  }
}
