/**
 * `POST /v1/requests` input: validation and normalisation, pure (no I/O), so every 400 case is
 * unit-testable. The route (routes/requests.ts) turns the result into an upstream request.
 *
 * Body: `{serviceId, method, path, headers?, body?, bodyEncoding?}` (the original's
 * GatewayRequest, plus `bodyEncoding: "base64"` to send binary bytes).
 * - `method`: case-insensitive, one of GET HEAD POST PUT PATCH DELETE OPTIONS; normalised upper-case.
 * - `path`: a path on the service, appended to its base URL; a missing leading `/` is added.
 *   Refused (400, field `path`): empty; spaces or control characters; an absolute URL
 *   (`http://…`, any `scheme:`); a network-path reference (`//host`, `/\host`, `\\host`); a
 *   fragment (`#`); and any `..` that climbs above the service's base path — raw, percent-encoded
 *   (`%2e%2e`, `%2E.`), double-encoded (`%252e%252e`), with `\` or encoded `/`/`\` as the
 *   separator, or as a `..;param` segment. A `..` that stays inside (`/a/../b`) is allowed.
 * - `headers`: string values (numbers and booleans are converted); names must be HTTP tokens and
 *   values free of CR/LF. `Host`, `Content-Length` and `Transfer-Encoding` are dropped: the gateway
 *   sets them for the bytes it actually sends.
 * - `body`: absent/null = no body; a string = sent as-is (UTF-8; `Content-Type: text/plain` unless
 *   given); with `bodyEncoding: "base64"`, the decoded bytes; anything else = serialised as JSON
 *   (`Content-Type: application/json` unless given). A HEAD request cannot have a body.
 */
import { z } from 'zod';
import { HestiaError } from '../errors.ts';
import { escapesBase } from '../proxy/target-path.ts';

export const DISPATCH_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;
export type DispatchMethod = (typeof DISPATCH_METHODS)[number];

export interface DispatchRequest {
  serviceId: string;
  method: DispatchMethod;
  /** Normalised path (leading `/`), raw query kept, percent-encoding untouched. */
  path: string;
  /** Lower-case names. */
  headers: Record<string, string>;
  /** Exact bytes to send, or null for no body. */
  body: Buffer | null;
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const DROPPED_HEADERS = new Set(['host', 'content-length', 'transfer-encoding']);
const BASE64 = /^[A-Za-z0-9+/_-]*={0,2}$/;

const headerValue = z
  .union([z.string(), z.number(), z.boolean()], { error: 'must be a string' })
  .transform((v) => String(v))
  .refine((v) => !/[\r\n\0]/.test(v), { error: 'must not contain CR, LF or NUL' });

const schema = z
  .object(
    {
      serviceId: z.string({ error: 'is required (a service id string)' }).min(1, { error: 'must not be empty' }),
      method: z
        .string({ error: `is required (one of ${DISPATCH_METHODS.join(', ')})` })
        .transform((m) => m.toUpperCase())
        .refine((m): m is DispatchMethod => (DISPATCH_METHODS as readonly string[]).includes(m), {
          error: (iss) => `must be one of ${DISPATCH_METHODS.join(', ')}, got ${JSON.stringify(iss.input)}`,
        }),
      // Checked on the field itself (not in the object's superRefine) so that a bad path is
      // reported together with other bad fields: zod skips object refinements once a field fails.
      path: z.string({ error: "is required (a path on the service, e.g. '/v1/models')" }).superRefine((p, ctx) => {
        const problem = servicePathProblem(p);
        if (problem) ctx.addIssue({ code: 'custom', message: problem });
      }),
      headers: z
        .record(z.string(), headerValue, { error: 'must be an object of header name → string' })
        .nullish()
        .superRefine((h, ctx) => {
          for (const name of Object.keys(h ?? {}))
            if (!TOKEN.test(name))
              ctx.addIssue({ code: 'custom', path: [name], message: 'is not a valid header name' });
        }),
      body: z.unknown().optional(),
      bodyEncoding: z.enum(['base64'], { error: "must be 'base64' when given" }).optional(),
    },
    { error: 'must be a JSON object {serviceId, method, path, headers?, body?}' },
  )
  .superRefine((v, ctx) => {
    if (v.bodyEncoding === 'base64' && v.body !== undefined && v.body !== null) {
      if (typeof v.body !== 'string' || !BASE64.test(v.body))
        ctx.addIssue({
          code: 'custom',
          path: ['body'],
          message: 'must be a base64 string when bodyEncoding is base64',
        });
    }
    if (v.method === 'HEAD' && v.body !== undefined && v.body !== null)
      ctx.addIssue({ code: 'custom', path: ['body'], message: 'must be absent for a HEAD request' });
  });

export type DispatchParse = { ok: true; value: DispatchRequest } | { ok: false; error: HestiaError };

/** Validate and normalise a dispatcher request body; a 400 HESTIA_VALIDATION names every bad field. */
export function parseDispatchRequest(input: unknown): DispatchParse {
  const r = schema.safeParse(input);
  if (!r.success) {
    const issues = r.error.issues.map((i) => ({
      field: i.path.length > 0 ? i.path.map(String).join('.') : '(body)',
      message: i.message,
    }));
    const first = issues[0] ?? { field: '(body)', message: 'invalid' };
    const text = issues.map((i) => (i.field === '(body)' ? `request body ${i.message}` : `${i.field} ${i.message}`));
    return {
      ok: false,
      error: new HestiaError('HESTIA_VALIDATION', `invalid dispatcher request: ${text.join('; ')}`, {
        field: first.field,
        issues,
      }),
    };
  }
  const v = r.data;
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(v.headers ?? {})) {
    const lower = name.toLowerCase();
    if (!DROPPED_HEADERS.has(lower)) headers[lower] = value;
  }
  let body: Buffer | null = null;
  if (v.body !== undefined && v.body !== null) {
    if (v.bodyEncoding === 'base64') body = Buffer.from(v.body as string, 'base64');
    else if (typeof v.body === 'string') {
      body = Buffer.from(v.body, 'utf8');
      headers['content-type'] ??= 'text/plain; charset=utf-8';
    } else {
      body = Buffer.from(JSON.stringify(v.body), 'utf8');
      headers['content-type'] ??= 'application/json';
    }
  }
  return {
    ok: true,
    value: {
      serviceId: v.serviceId,
      method: v.method as DispatchMethod,
      path: v.path.startsWith('/') ? v.path : `/${v.path}`,
      headers,
      body,
    },
  };
}

/**
 * Why `path` is not a path on the service, or null when it is. See the file comment for the rules.
 */
export function servicePathProblem(path: string): string | null {
  if (path === '') return "must not be empty (use '/' for the service root)";
  if (hasSpaceOrControl(path)) return 'must not contain spaces or control characters (percent-encode them)';
  if (/^[A-Za-z][A-Za-z0-9+.-]*:/.test(path)) return 'must be a path on the service, not an absolute URL';
  if (/^[/\\]{2}/.test(path)) return "must not start with '//' (a network-path reference names another host)";
  if (path.includes('#')) return "must not contain a fragment ('#')";
  const q = path.indexOf('?');
  const pathPart = q === -1 ? path : path.slice(0, q);
  if (escapesBase(pathPart)) return "must not climb above the service's base path ('..', also percent-encoded)";
  return null;
}

function hasSpaceOrControl(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c <= 0x20 || c === 0x7f) return true;
  }
  return false;
}
