import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { auditBucket, workerConsumer } from '@bus/streams';
import { startNats, type TestNats, uniquePrefix, waitFor } from '@bus/testkit';
import { type AuditRecord, AuditHeaders, decodeAudit, decodeAuditRecords, encodeAudit } from './audit.js';
import { auditOfCorrelation, auditRecordsOf, auditTrace, legacyAuditOf } from './audit-read.js';
import type { Bus } from './connect.js';
import { readStream } from './read.js';
import { testBus } from './test-support.js';
import { createEnvelope, decodeEnvelope, type Envelope } from '@bus/envelope';
import { done, retryAfter } from './outcome.js';
import { ensureConsumer } from './topology.js';

describe('the audit index: a trace by correlation id, event id or entity reads only its own records', () => {
  let nats: TestNats;
  let bus: Bus;
  const longCorrelation = `caller's id with spaces and dots. ${'x'.repeat(120)}`;
  before(async () => {
    nats = await startNats();
    bus = await testBus(nats.url, uniquePrefix());
    const step = (correlationId: string, stage: string, outcome: string, eventId: string, entity?: { type: string; id: string }, attempt?: number) =>
      bus.audit({ stage, outcome, correlationId, eventId, entity, attempt, connector: stage === 'deliver' ? 'crm' : undefined });
    step('corr-a', 'ingest', 'stored', 'ev-a');
    step('corr-a', 'transform', 'transformed', 'ev-a', { type: 'contact', id: 'c-1' });
    step('corr-a', 'deliver', 'failed', 'ev-a', { type: 'contact', id: 'c-1' }, 1);
    step('corr-a', 'deliver', 'delivered', 'ev-a', { type: 'contact', id: 'c-1' }, 2);
    step('corr-b', 'ingest', 'stored', 'ev-b');
    step('corr-b', 'deliver', 'delivered', 'ev-b', { type: 'contact', id: 'c-1' }, 1);
    step('corr-c', 'deliver', 'delivered', 'ev-c', { type: 'contact', id: 'c-2' }, 1);
    step(longCorrelation, 'ingest', 'stored', 'ev-long.with.dots');
    // a record in the layout before the index: audit.<stage>.<outcome>
    const legacy = { stage: 'ingest', outcome: 'stored', correlationId: 'corr-old', at: new Date(0).toISOString(), eventId: 'ev-old' };
    await bus.publish(`${bus.names.prefix.toLowerCase()}.audit.ingest.stored`, encodeAudit(legacy), { msgId: 'legacy-1', headers: { [AuditHeaders.CorrelationId]: 'corr-old' } });
    await waitFor(async () => (await auditOfCorrelation(bus, longCorrelation)).length === 1 && (await auditOfCorrelation(bus, 'corr-c')).length === 1,
      { what: 'the unconfirmed audit writes stored' });
  });
  after(async () => {
    await bus.close();
    await nats.stop({ removeStore: true });
  });

  it('keys that share a bucket: each lookup keeps only its own correlation, event and entity', async () => {
    // find a second correlation, event id and entity in the same buckets as corr-a, ev-a and contact/c-1
    const twin = (of: string, make: (i: number) => string) => {
      for (let i = 0; ; i++) if (auditBucket(make(i)) === auditBucket(of) && make(i) !== of) return make(i);
    };
    const corr = twin('corr-a', (i) => `corr-twin-${i}`);
    const ev = twin('ev-a', (i) => `ev-twin-${i}`);
    const entityId = twin('contact/c-1', (i) => `contact/t-${i}`).slice('contact/'.length);
    bus.audit({ stage: 'ingest', outcome: 'stored', correlationId: corr, eventId: ev, entity: { type: 'contact', id: entityId } });
    await waitFor(async () => (await auditOfCorrelation(bus, corr)).length === 1, { what: 'the twin stored' });
    assert.equal(bus.names.subjects.audit(corr), bus.names.subjects.audit('corr-a'), 'same bucket subject');
    assert.deepEqual((await auditTrace(bus, 'corr-a')).correlations.map((c) => c.correlationId), ['corr-a']);
    assert.deepEqual((await auditTrace(bus, corr)).correlations.map((c) => c.records.length), [1]);
    assert.deepEqual((await auditTrace(bus, 'ev-a', { kind: 'event' })).correlations.map((c) => c.correlationId), ['corr-a']);
    assert.deepEqual((await auditTrace(bus, ev, { kind: 'event' })).correlations.map((c) => c.correlationId), [corr]);
    assert.deepEqual((await auditTrace(bus, `contact/${entityId}`)).correlations.map((c) => c.correlationId), [corr]);
    assert.ok(!(await auditTrace(bus, 'contact/c-1')).correlations.some((c) => c.correlationId === corr), 'the twin entity is not c-1');
  });

  it('by correlation id: every step of that action, in time order, none of another', async () => {
    const t = await auditTrace(bus, 'corr-a');
    assert.equal(t.kind, 'correlation');
    assert.deepEqual(t.correlations.map((c) => c.correlationId), ['corr-a']);
    assert.deepEqual(t.correlations[0]!.records.map((r) => `${r.stage} ${r.outcome}${r.attempt ? ` ${r.attempt}` : ''}`),
      ['ingest stored', 'transform transformed', 'deliver failed 1', 'deliver delivered 2']);
  });

  it('by event id (also when asked as a correlation): the action that carried it', async () => {
    assert.deepEqual((await auditTrace(bus, 'ev-b', { kind: 'event' })).correlations.map((c) => c.correlationId), ['corr-b']);
    const guessed = await auditTrace(bus, 'ev-b');
    assert.equal(guessed.kind, 'event');
    assert.equal(guessed.correlations[0]!.records.length, 2);
  });

  it('by entity: every action that touched it, each whole (also its steps without the entity)', async () => {
    const t = await auditTrace(bus, 'contact/c-1');
    assert.equal(t.kind, 'entity');
    assert.deepEqual(t.correlations.map((c) => c.correlationId), ['corr-a', 'corr-b']);
    assert.deepEqual(t.correlations[1]!.records.map((r) => r.stage), ['ingest', 'deliver']);
    assert.deepEqual((await auditTrace(bus, 'contact/c-2')).correlations.map((c) => c.correlationId), ['corr-c']);
  });

  it('ids that are no subject token (dots, spaces, 150 chars) are hashed into one and still found exactly', async () => {
    assert.equal((await auditTrace(bus, longCorrelation)).correlations[0]!.records[0]!.eventId, 'ev-long.with.dots');
    assert.deepEqual((await auditTrace(bus, 'ev-long.with.dots', { kind: 'event' })).correlations.map((c) => c.correlationId), [longCorrelation]);
  });

  it('unknown keys, a malformed entity and a window after the records find nothing (and do not throw)', async () => {
    assert.deepEqual((await auditTrace(bus, 'no-such-id')).correlations, []);
    assert.deepEqual((await auditTrace(bus, 'contact/none')).correlations, []);
    assert.deepEqual((await auditTrace(bus, '/c-1', { kind: 'entity' })).correlations, []);
    assert.deepEqual((await auditTrace(bus, 'corr-a', { sinceMs: Date.now() + 60_000 })).correlations, []);
    assert.equal((await auditTrace(bus, 'corr-a', { sinceMs: Date.now() - 60_000 })).correlations[0]!.records.length, 4);
  });

  it('records in the old layout are not in a trace, but --legacy (legacyAuditOf) reads them; stage readers skip index entries', async () => {
    assert.deepEqual((await auditTrace(bus, 'corr-old')).correlations, []);
    assert.deepEqual((await legacyAuditOf(bus, 'corr-old')).map((r) => r.eventId), ['ev-old']);
    const delivered: string[] = [];
    for await (const r of auditRecordsOf(bus, 'deliver', 'delivered')) delivered.push(r.correlationId);
    assert.deepEqual(delivered, ['corr-a', 'corr-b', 'corr-c']);
    // a reader that decodes every AUDIT message as a record (older tests and tools) gets objects, never an error
    for await (const m of readStream(bus.jsm, bus.names.streams.audit)) assert.equal(typeof decodeAudit(m.data), 'object');
  });
});

describe('coalesced audit writes: fewer AUDIT messages, the same trace', () => {
  let nats: TestNats;
  before(async () => {
    nats = await startNats();
  });
  after(() => nats.stop({ removeStore: true }));

  const messagesOn = async (bus: Bus, subject: string) => {
    const out: { headers: string | undefined; records: number }[] = [];
    for await (const m of readStream(bus.jsm, bus.names.streams.audit)) {
      if (m.subject === subject) out.push({ headers: m.header.get(AuditHeaders.Stage), records: decodeAuditRecords(m.data).length });
    }
    return out;
  };

  it("an action's steps of one flush are one message; the event's stored record indexes it for the later steps", async () => {
    const prefix = uniquePrefix();
    const bus = await testBus(nats.url, prefix, { BUS_AUDIT_FLUSH_MS: '200' });
    try {
      const entity = { type: 'contact', id: 'co-1' };
      bus.audit({ stage: 'ingest', outcome: 'stored', correlationId: 'corr-co', eventId: 'ev-co', entity, version: 1 });
      bus.audit({ stage: 'transform', outcome: 'transformed', correlationId: 'corr-co', eventId: 'ev-co', connector: 'crm', entity }, { eventIndexed: true });
      bus.audit({ stage: 'transform', outcome: 'transformed', correlationId: 'corr-co', eventId: 'ev-co', connector: 'warehouse', entity }, { eventIndexed: true });
      await waitFor(async () => (await auditOfCorrelation(bus, 'corr-co')).length === 3, { what: 'the flush stored' });
      assert.deepEqual(await messagesOn(bus, bus.names.subjects.audit('corr-co')), [{ headers: 'ingest,transform', records: 3 }]);
      const info = await bus.jsm.streams.info(bus.names.streams.audit);
      assert.equal(info.state.messages, 3, 'the records, one event index entry, one entity index entry');
      for (const key of ['corr-co', 'ev-co', 'contact/co-1']) {
        assert.deepEqual((await auditTrace(bus, key)).correlations.map((c) => c.records.map((r) => r.connector ?? r.stage)), [['ingest', 'crm', 'warehouse']], key);
      }
      const transformed: string[] = [];
      for await (const r of auditRecordsOf(bus, 'transform', 'transformed')) transformed.push(r.connector!);
      assert.deepEqual(transformed, ['crm', 'warehouse']);
    } finally {
      await bus.close();
    }
  });

  it('records in the single-record layout (written before coalescing) and lists read as one trace; a step done again shows once', async () => {
    const prefix = uniquePrefix();
    const bus = await testBus(nats.url, prefix, { BUS_AUDIT_FLUSH_MS: '0' });
    try {
      const old: AuditRecord = { stage: 'ingest', outcome: 'stored', correlationId: 'corr-mix', at: new Date(Date.now() - 1_000).toISOString(), eventId: 'ev-mix' };
      // as the writer before coalescing stored it: one record per message, with its headers
      await bus.publish(bus.names.subjects.audit('corr-mix'), encodeAudit(old), {
        msgId: 'old-1', headers: { [AuditHeaders.CorrelationId]: 'corr-mix', [AuditHeaders.Stage]: 'ingest', [AuditHeaders.Outcome]: 'stored' },
      });
      const delivered = { stage: 'deliver', outcome: 'delivered', correlationId: 'corr-mix', eventId: 'ev-mix', connector: 'crm', attempt: 1 };
      bus.audit(delivered);
      bus.audit({ stage: 'deliver', outcome: 'failed', correlationId: 'corr-mix', eventId: 'ev-mix', connector: 'wh', attempt: 1 });
      await waitFor(async () => (await messagesOn(bus, bus.names.subjects.audit('corr-mix'))).length === 2, { what: 'the list stored' });
      bus.audit(delivered); // a redelivered command delivered again (its duplicate was dropped by the server before)
      await waitFor(async () => (await messagesOn(bus, bus.names.subjects.audit('corr-mix'))).length === 3, { what: 'the repeat stored' });
      const steps = (await auditTrace(bus, 'corr-mix')).correlations[0]!.records.map((r) => `${r.stage} ${r.outcome}`);
      assert.deepEqual(steps, ['ingest stored', 'deliver delivered', 'deliver failed']);
    } finally {
      await bus.close();
    }
  });

  it('close() stores the records still waiting for their flush', async () => {
    const prefix = uniquePrefix();
    const bus = await testBus(nats.url, prefix, { BUS_AUDIT_FLUSH_MS: '1000' });
    bus.audit({ stage: 'connector', outcome: 'paused', correlationId: 'corr-close', connector: 'crm' });
    await bus.close();
    const reader = await testBus(nats.url, prefix);
    try {
      assert.deepEqual((await auditOfCorrelation(reader, 'corr-close')).map((r) => r.outcome), ['paused']);
    } finally {
      await reader.close();
    }
  });
});

describe('audit records leave before the acknowledgements of the steps they record', () => {
  let nats: TestNats;
  before(async () => {
    nats = await startNats();
  });
  after(() => nats.stop({ removeStore: true }));

  for (const outcome of ['done', 'retry'] as const) {
    it(`${outcome === 'done' ? 'an ack' : 'a nak'}: the record is stored by then, even with a long BUS_AUDIT_FLUSH_MS`, async () => {
      const prefix = uniquePrefix();
      // a second of coalescing: without the flush before settling, the ack would go out long before the record
      const bus = await testBus(nats.url, prefix, { BUS_AUDIT_FLUSH_MS: '1000' });
      const reader = await testBus(nats.url, prefix);
      try {
        const durable = `audit-before-${outcome}`;
        await ensureConsumer(bus.jsm, workerConsumer({ stream: bus.names.streams.events, durable, description: 'test', filterSubject: bus.names.subjects.event('t', 'x.>'), maxDeliver: 5 }));
        let handled = 0;
        const consumption = await bus.consume<Envelope>({
          stream: bus.names.streams.events, durable, stage: 'test', decode: decodeEnvelope,
          handler: async (env) => {
            handled++;
            bus.audit({ stage: 'test', outcome: `handled-${handled}`, correlationId: env.correlationId ?? env.id, eventId: env.id });
            return outcome === 'done' || handled > 1 ? done() : retryAfter(50, 'again in 50 ms');
          },
        });
        try {
          const env = createEnvelope({ type: 'x.y', entity: { type: 'e', id: 'e1' }, version: 1, data: {} }, { source: 't' });
          await bus.publishEnvelope(bus.names.subjects.event('t', env.type), env);
          const corr = env.correlationId ?? env.id;
          // settled: acknowledged (done), or redelivered after its nak (which the server must have had)
          await waitFor(async () => {
            if (outcome === 'retry') return handled >= 2;
            const i = await bus.jsm.consumers.info(bus.names.streams.events, durable);
            return handled >= 1 && i.num_ack_pending === 0 && i.ack_floor.stream_seq >= 1;
          }, { what: 'the message settled', intervalMs: 5 });
          assert.ok((await auditOfCorrelation(reader, corr)).some((r) => r.outcome === 'handled-1'), 'the first handling\'s record is stored');
        } finally {
          await consumption.stop();
        }
      } finally {
        await reader.close();
        await bus.close();
      }
    });
  }
});
