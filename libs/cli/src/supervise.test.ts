import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { waitFor } from '@bus/testkit';
import { supervise } from './supervise.js';

describe('supervise: services started with their heap flags', () => {
  it('deliver runs with the bounded heap, reconcile without; BUS_SERVICE_NODE_FLAGS overrides', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'supervise-'));
    const main = join(dir, 'main.cjs');
    // a stand-in service: says ready with the flags it was started with, then idles until told to stop
    writeFileSync(main, `process.send({ type: 'ready', service: process.env.NAME, endpoints: { flags: process.execArgv.filter((a) => a.startsWith('--max-')).join(' ') || '(none)' } });
      process.on('SIGTERM', () => process.exit(0)); setInterval(() => {}, 1000);`);
    const run = async (env: NodeJS.ProcessEnv) => {
      const lines: string[] = [];
      const s = supervise([{ name: 'deliver', main }, { name: 'reconcile', main }], { env: { ...process.env, ...env }, print: (l) => lines.push(l), printError: () => {} });
      try {
        await waitFor(() => lines.length === 2, { what: 'both stand-ins ready' });
      } finally {
        await s.stop();
      }
      return lines.join('\n');
    };
    const defaults = await run({ NAME: 'x', BUS_SERVICE_NODE_FLAGS: undefined });
    // both children print their own flags; which line is which is told by the order of the flags only
    assert.match(defaults, /flags --max-old-space-size=96/);
    assert.match(defaults, /flags \(none\)/);
    const given = await run({ NAME: 'x', BUS_SERVICE_NODE_FLAGS: '--max-old-space-size=300' });
    assert.equal(given.match(/flags --max-old-space-size=300/g)?.length, 2);
  });
});
