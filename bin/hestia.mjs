#!/usr/bin/env node
// The `hestia` command. Sources are TypeScript, loaded through tsx's ESM hooks, so a fresh
// clone runs after `npm ci` with no build step to remember.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli/main.ts');
const code = await main(process.argv.slice(2));
if (typeof code === 'number') process.exitCode = code;
