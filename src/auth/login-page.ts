/**
 * The dashboard login page: one self-contained HTML document (inline CSS only, no script), so it
 * works under the strict Content-Security-Policy the login route sends.
 */

export interface LoginPageOptions {
  error?: string;
  /** Where to go after login (already checked to be a local /ui path). */
  next?: string;
  /** False when `auth.dashboard` is not configured. */
  configured: boolean;
  enabled: boolean;
  /** Where the form posts; default the dashboard's `/ui/login` (a door's is `/.hestia/login`). */
  action?: string;
  /** The heading; default `Hestia`. */
  title?: string;
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}

export function loginPage(opts: LoginPageOptions): string {
  const notice = !opts.enabled
    ? '<p class="note">Authentication is disabled: the dashboard is open without logging in.</p>'
    : !opts.configured
      ? '<p class="err">Dashboard login is not configured. Set <code>auth.dashboard.username</code> and <code>auth.dashboard.password_hash</code> (from <code>hestia hash-password</code>).</p>'
      : '';
  const error = opts.error ? `<p class="err" role="alert">${escapeHtml(opts.error)}</p>` : '';
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Hestia — log in</title>
<style>
  body { font: 16px/1.4 system-ui, sans-serif; background: #f4f4f5; display: grid; place-items: center; min-height: 100vh; margin: 0; }
  form { background: #fff; padding: 2rem; border-radius: 8px; box-shadow: 0 1px 4px #0002; width: 18rem; }
  h1 { font-size: 1.25rem; margin: 0 0 1rem; }
  label { display: block; margin: .75rem 0 .25rem; }
  input { width: 100%; box-sizing: border-box; padding: .5rem; font: inherit; }
  button { margin-top: 1.25rem; width: 100%; padding: .6rem; font: inherit; cursor: pointer; }
  .err { color: #b91c1c; } .note { color: #555; }
</style>
</head>
<body>
<form method="post" action="${escapeHtml(opts.action ?? '/ui/login')}">
  <h1>${escapeHtml(opts.title ?? 'Hestia')}</h1>
  ${notice}${error}
  <input type="hidden" name="next" value="${escapeHtml(opts.next ?? '/ui')}">
  <label for="username">Username</label>
  <input id="username" name="username" autocomplete="username" required autofocus>
  <label for="password">Password</label>
  <input id="password" name="password" type="password" autocomplete="current-password" required>
  <button type="submit">Log in</button>
</form>
</body>
</html>
`;
}
