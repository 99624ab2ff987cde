import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { connectBus, loadBusConfig } from '@bus/bus';
import { createEnvelope } from '@bus/envelope';
import { readActive } from '@bus/projection';
import { startNats, startProcess, type TestNats, uniquePrefix } from '@bus/testkit';
import { cliLog } from './context.js';

const main = fileURLToPath(new URL('./main.js', import.meta.url));

describe('bus rebuild projection', () => {
  let nats: TestNats;
  before(async () => {
    nats = await startNats();
  });
  after(() => nats.stop({ removeStore: true }));

  const cli = async (prefix: string, ...args: string[]) => {
    const p = startProcess({ command: process.execPath, args: [main, 'rebuild', 'projection', ...args], env: { NATS_URL: nats.url, BUS_PREFIX: prefix } });
    const exit = await p.exited;
    return { code: exit.code, output: p.output() };
  };

  it('replays EVENTS into a new generation, prints progress and the result, and switches to it', async () => {
    const prefix = uniquePrefix();
    const bus = await connectBus({ config: loadBusConfig({ NATS_URL: nats.url, BUS_PREFIX: prefix }), name: 'cli-test', log: cliLog });
    try {
      await bus.applyTopology();
      for (let v = 1; v <= 5; v++) {
        const env = createEnvelope({ type: 'contact.updated', entity: { type: 'contact', id: 'c1' }, version: v, data: { v } }, { source: 'crm' });
        await bus.publishEnvelope(bus.names.subjects.event('crm', 'contact.updated'), env);
      }
      const r = await cli(prefix);
      assert.equal(r.code, 0, r.output);
      assert.match(r.output, /^replaying +generation 2 +seq 0 \/ 5/m);
      assert.match(r.output, /^done +generation 2 +seq 5 \/ 5 \(100\.0 %\) .* applied 5, stale 0, duplicate 0/m);
      assert.match(r.output, /^done: generation 2 is active; generation 1 is deleted \(--keep-previous keeps it for a rollback\); 5 events read from sequence 1/m);
      assert.equal((await readActive(bus))?.value.generation, 2);

      const again = await cli(prefix, '--from-seq', '4');
      assert.equal(again.code, 0, again.output);
      assert.match(again.output, /^done: generation 3 is active; .* 2 events read from sequence 4/m);
    } finally {
      await bus.close();
    }
  });

  it('a bad start says what it wants, and nothing is rebuilt', async () => {
    const prefix = uniquePrefix();
    const bad = await cli(prefix, '--from-seq', 'x');
    assert.equal(bad.code, 1);
    assert.match(bad.output, /--from-seq "x" must be a whole number from 1/);
    const both = await cli(prefix, '--from-seq', '1', '--since', '2h');
    assert.equal(both.code, 1);
    assert.match(both.output, /give --from-seq or --since, not both/);
  });
});
