#!/usr/bin/env node
// The `bus` command. npm links this file when it installs the workspace (npm ci), before
// anything is built, so it is plain JavaScript: it runs the built CLI, or says how to build it.
import { existsSync } from 'node:fs';

const main = new URL('../dist/main.js', import.meta.url);
if (!existsSync(main)) {
  console.error('bus: the command is not built yet (libs/cli/dist/main.js is missing). Run: npm run build ' +
    '(bash scripts/bootstrap.sh builds too)');
  process.exit(1);
}
await import(main.href);
