/** See source-fingerprint.mjs. */
export function sourceFingerprint(root: string): string;
