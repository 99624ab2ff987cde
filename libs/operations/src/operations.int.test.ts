import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { auditRecordsOf, type Bus, connectBus, type DeadLetter, loadBusConfig } from '@bus/bus';
import { encode } from '@bus/envelope';
import { createLogger } from '@bus/observability';
import { startNats, type TestNats, uniquePrefix, waitFor } from '@bus/testkit';
import { watchActivity } from './activity.js';
import { connectorStates, setPaused } from './connectors.js';
import { discardEntries, dlqEntryAt, matchingEntries } from './dlq.js';
import { showDeadLetter } from './mask.js';

const log = createLogger({ service: 'test', level: 'silent' });

function entry(i: number, connector: string, data: Uint8Array, headers: Record<string, string> = {}): DeadLetter {
  return {
    id: `EVENTS.${i}`, stage: 'deliver', connector, failureClass: 'business', code: 'TARGET_REJECTED', reason: `rejected ${i}`, attempts: 2,
    history: [{ attempt: 1, failureClass: 'transient', at: new Date().toISOString() }, { attempt: 2, failureClass: 'business', at: new Date().toISOString() }],
    deadLetteredAt: new Date().toISOString(), correlationId: `corr-${i}`,
    original: { stream: 'DELIVERIES', seq: i, subject: 'deliveries.crm.contact', headers, data }, replays: 0,
  };
}

describe('operations: the calls the CLI and the console share', () => {
  let nats: TestNats;
  let bus: Bus;
  before(async () => {
    nats = await startNats();
    const prefix = uniquePrefix();
    bus = await connectBus({ config: loadBusConfig({ NATS_URL: nats.url, BUS_PREFIX: prefix }), name: 'ops-test', log });
    await bus.applyTopology();
  });
  after(async () => {
    await bus.close();
    await nats.stop({ removeStore: true });
  });

  it('a shown DLQ entry masks personal fields (as reconcile reports do) and never shows a signature or token', async () => {
    const body = encode({ id: 'cmd-1', fields: { email: 'ada@example.com', name: 'Ada', nested: { phone: '+44 1' } }, accessToken: 'tok-123' });
    const stored = await bus.deadLetter(entry(1, 'crm', body, { 'webhook-signature': 'v1,abc', 'Bus-Correlation-Id': 'corr-1' }));
    const { seq, entry: e } = await dlqEntryAt(bus, stored.seq);
    const shown = showDeadLetter(seq, e, new Set(['email', 'phone']));
    const text = JSON.stringify(shown);
    for (const secret of ['ada@example.com', '+44 1', 'tok-123', 'v1,abc']) assert.ok(!text.includes(secret), `${secret} is not shown`);
    const data = shown.original.data as { fields: { email: string; name: string; nested: { phone: string } } };
    assert.match(data.fields.email, /^redacted:[0-9a-f]{8}$/);
    assert.match(data.fields.nested.phone, /^redacted:[0-9a-f]{8}$/);
    assert.equal(data.fields.name, 'Ada', 'a field not named personal is shown');
    assert.equal(shown.history.length, 2);
    await assert.rejects(dlqEntryAt(bus, 999_999), /no DLQ entry at sequence 999999/);
  });

  it('discard: the dry run counts and deletes nothing; the real one deletes exactly those and audits who did it', async () => {
    await bus.deadLetter(entry(2, 'warehouse', new Uint8Array([1])));
    await bus.deadLetter(entry(3, 'warehouse', new Uint8Array([2])));
    assert.equal(await discardEntries(bus, { connector: 'warehouse' }, undefined, { dryRun: true, by: 'console:alice' }), 2);
    assert.equal((await matchingEntries(bus, { connector: 'warehouse' })).length, 2);
    assert.equal(await discardEntries(bus, { connector: 'warehouse' }, undefined, { by: 'console:alice' }), 2);
    assert.deepEqual(await matchingEntries(bus, { connector: 'warehouse' }), []);
    assert.equal((await matchingEntries(bus, {})).length, 1, 'the crm entry stays');
    const audited = await waitFor(async () => {
      const got = [];
      for await (const r of auditRecordsOf(bus, 'dlq', 'discarded')) got.push(r);
      return got.length === 2 ? got : undefined;
    }, { what: 'two discard audit records' });
    assert.deepEqual(audited.map((r) => r.by), ['console:alice', 'console:alice']);
  });

  it('pause and resume: the state (with why and who) is what connectorStates reads, and each is audited', async () => {
    await bus.jsm.consumers.add(bus.names.streams.deliveries, { durable_name: 'deliver-crm', ack_policy: 'explicit' as never, filter_subject: bus.names.subjects.delivery('crm', '>') });
    await setPaused(bus, 'crm', true, 'target maintenance', 'console:bob');
    const [state] = await connectorStates(bus);
    assert.deepEqual([state!.connector, state!.paused, state!.reason, state!.by], ['crm', true, 'target maintenance', 'console:bob']);
    await setPaused(bus, 'crm', false, 'resumed', 'cli');
    assert.equal((await connectorStates(bus))[0]!.paused, false);
    const audited = await waitFor(async () => {
      const got = [];
      for await (const r of auditRecordsOf(bus, 'connector')) got.push(`${r.outcome} ${r.by} ${r.reason}`);
      return got.length === 2 ? got : undefined;
    }, { what: 'two connector audit records' });
    assert.deepEqual(audited, ['paused console:bob target maintenance', 'resumed cli resumed']);
  });

  it('live activity: in, delivered, failed and p95 transform→delivered per connector, from audit records written after the watch began', async () => {
    const activity = await watchActivity({ bus, log, slotMs: 1_000, slots: 60 });
    try {
      const t0 = Date.now() - 2_000; // in the past: the series ends at the current slot
      for (let i = 0; i < 10; i++) {
        const base = { correlationId: `act-${i}`, eventId: `ev-act-${i}`, connector: 'crm' };
        bus.audit({ ...base, stage: 'transform', outcome: 'transformed', at: new Date(t0 + i).toISOString() });
        bus.audit({ ...base, stage: 'deliver', outcome: i === 9 ? 'failed' : 'delivered', attempt: 1, at: new Date(t0 + i + 100 * (i + 1)).toISOString() });
      }
      const rates = await waitFor(() => {
        const r = activity.rates('crm', 60_000);
        return r.deliveredPerSec * 60 >= 9 && r.failedPerSec * 60 >= 1 ? r : undefined;
      }, { what: 'the watch saw the records' });
      assert.equal(Math.round(rates.inPerSec * 60), 10);
      assert.equal(Math.round(rates.deliveredPerSec * 60), 9);
      assert.equal(rates.p95Ms, 900, 'p95 of 100..900 ms');
      assert.deepEqual(activity.connectors(), ['crm']);
      const series = activity.series('crm');
      assert.equal(series.length, 60);
      assert.equal(series.reduce((n, s) => n + s.delivered, 0), 9);
      assert.equal(activity.rates('warehouse').deliveredPerSec, 0, 'a connector with nothing reads zero');
    } finally {
      await activity.stop();
    }
  });
});
