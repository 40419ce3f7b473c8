// Which sources a build of dist/ was made from. Shared by scripts/build.mjs (writes it next to
// the bundle) and bin/hestia.mjs (compares it at start): the bundle is used only when the
// fingerprint of src/ now equals the one it was built from, so an edited, added or removed
// source file always runs through tsx until the next build. Path, size and mtime of every
// file under src/ — about 100 stat calls, ~2 ms — rather than hashing contents, which would
// cost more than the start-up it saves.
import { createHash } from 'node:crypto';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

export function sourceFingerprint(root) {
  const src = join(root, 'src');
  const lines = [];
  for (const entry of readdirSync(src, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const file = join(entry.parentPath ?? entry.path, entry.name);
    const st = statSync(file);
    lines.push(`${relative(src, file)}\t${st.size}\t${st.mtimeMs}`);
  }
  lines.sort();
  return createHash('sha256').update(lines.join('\n')).digest('hex');
}
