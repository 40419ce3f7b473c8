/**
 * Wording of config problems (resolve.ts): what type was expected, what was given, and the
 * closest known key for a typo ("did you mean idle_timeout_ms?"). Values echoed back are
 * masked (mask.ts): a config error must not print a password from a URL.
 */
import { maskText } from './mask.ts';

export { maskText };

/** `string` → `a string`, `array` → `a list`, … (zod's `expected` names in a user's words). */
export function expectedNoun(expected: string): string {
  switch (expected) {
    case 'string':
      return 'a string';
    case 'number':
    case 'int':
      return 'a number';
    case 'boolean':
      return 'a boolean (true/false)';
    case 'array':
      return 'a list';
    case 'object':
    case 'record':
    case 'map':
      return 'a mapping';
    default:
      return `of type ${expected}`;
  }
}

/** The value a user wrote, for "got …": scalars as written (masked), containers by kind. */
export function describeValue(v: unknown): string {
  if (v === null) return 'an empty value';
  if (Array.isArray(v)) return `a list (${JSON.stringify(v).slice(0, 60)})`;
  if (typeof v === 'object') return 'a mapping';
  const text = JSON.stringify(v) ?? String(v);
  return maskText(text.length > 80 ? `${text.slice(0, 77)}…"` : text);
}

interface UnionBranchIssue {
  code: string;
  path: readonly PropertyKey[];
  expected?: string;
}

/**
 * What a union accepts, from zod's per-branch issues: `a string or a list of strings`. Null when
 * a branch failed for another reason than its type (then its own issue says more).
 */
export function describeUnion(branches: readonly (readonly UnionBranchIssue[])[]): string | null {
  const nouns: string[] = [];
  for (const issues of branches) {
    const first = issues[0];
    if (first?.code !== 'invalid_type' || first.expected === undefined) return null;
    let noun: string;
    if (first.path.length === 0) noun = expectedNoun(first.expected);
    else if (first.path.length === 1 && typeof first.path[0] === 'number')
      noun = `a list of ${expectedNoun(first.expected).replace(/^an? /, '')}s`;
    else return null;
    if (!nouns.includes(noun)) nouns.push(noun);
  }
  return nouns.length > 0 ? nouns.join(' or ') : null;
}

export { closestKey, editDistance } from './closest-name.ts';
