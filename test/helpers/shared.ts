/**
 * The project's shared/ folder (SPEC, compat data) sits beside the repository: `../shared` from
 * a clone's root, in CI and on developers' machines. From a git worktree nested deeper, walk up.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export function sharedDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, 'shared', 'compat');
    if (existsSync(candidate)) return join(dir, 'shared');
    const parent = dirname(dir);
    if (parent === dir) throw new Error('shared/ (with compat/) not found beside the repository or above it');
    dir = parent;
  }
}
