import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { names } from '@bus/streams';
import { type AuditMessage, type AuditRecord, AuditHeaders, decodeAudit, decodeAuditRecords, encodeAudit, foldAuditRecords } from './audit.js';
import { createAuditWriter } from './audit-writer.js';

const n = names('');
const at = (ms: number) => new Date(Date.UTC(2026, 0, 1) + ms).toISOString();
const rec = (o: Partial<AuditRecord> & { stage: string; outcome: string }): AuditRecord =>
  ({ correlationId: 'corr-1', at: at(0), eventId: 'ev-1', entity: { type: 'contact', id: 'c-1' }, ...o });

function writer(o: { indexMemory?: number; maxRecords?: number } = {}) {
  const sent: AuditMessage[] = [];
  const w = createAuditWriter({ names: n, send: (m) => sent.push(m), flushMs: 1_000, ...o });
  const records = () => sent.filter((m) => m.headers[AuditHeaders.Stage]);
  const index = () => sent.filter((m) => !m.headers[AuditHeaders.Stage]).map((m) => m.subject.split('.').slice(1, 3).join('.'));
  return { w, sent, records, index };
}

describe('audit writer: fewer, larger AUDIT messages', () => {
  it("one flush: a correlation's records are one message (a list), each index entry once", () => {
    const { w, sent, records, index } = writer();
    w.write(rec({ stage: 'ingest', outcome: 'stored' }));
    w.write(rec({ stage: 'transform', outcome: 'transformed', connector: 'crm' }));
    w.write(rec({ stage: 'transform', outcome: 'transformed', connector: 'warehouse' }));
    w.write(rec({ stage: 'ingest', outcome: 'stored', correlationId: 'corr-2', eventId: 'ev-2' }));
    assert.equal(sent.length, 0, 'nothing before the flush');
    w.flush();
    assert.equal(records().length, 2, 'one message per correlation');
    const first = records().find((m) => m.headers[AuditHeaders.CorrelationId] === 'corr-1')!;
    assert.deepEqual(decodeAuditRecords(first.data).map((r) => r.connector ?? r.stage), ['ingest', 'crm', 'warehouse']);
    assert.equal(first.headers[AuditHeaders.Stage], 'ingest,transform');
    assert.equal(first.subject, n.subjects.audit('corr-1'));
    assert.deepEqual(index().sort(), ['ix.en', 'ix.en', 'ix.ev', 'ix.ev'], 'event and entity of each correlation, once');
  });

  it('an index entry already written by this process is not written again (bounded memory: the oldest is forgotten)', () => {
    const { w, index } = writer({ indexMemory: 2 });
    w.write(rec({ stage: 'deliver', outcome: 'failed', attempt: 1 }));
    w.flush();
    w.write(rec({ stage: 'deliver', outcome: 'delivered', attempt: 2 }));
    w.flush();
    assert.equal(index().length, 2, 'ev-1 and contact/c-1 once');
    w.write(rec({ stage: 'deliver', outcome: 'delivered', correlationId: 'corr-9', eventId: 'ev-9' })); // two more keys: the first two are forgotten
    w.write(rec({ stage: 'deliver', outcome: 'delivered', attempt: 3 }));
    w.flush();
    assert.equal(index().length, 6);
  });

  it("eventIndexed: transform's and deliver's records write no index entry (the event's stored record did)", () => {
    const { w, records, index } = writer();
    w.write(rec({ stage: 'transform', outcome: 'transformed', connector: 'crm' }), { eventIndexed: true });
    w.write(rec({ stage: 'deliver', outcome: 'delivered', connector: 'crm' }), { eventIndexed: true });
    w.flush();
    assert.equal(records().length, 1);
    assert.deepEqual(index(), []);
  });

  it('a record alone is stored in the single-record layout (readers of either layout read it); no correlation, no index', () => {
    const { w, records, index } = writer();
    const { eventId: _, ...r } = rec({ stage: 'connector', outcome: 'paused', correlationId: '' });
    w.write(r);
    w.flush();
    assert.deepEqual(decodeAudit(records()[0]!.data), r);
    assert.deepEqual(decodeAuditRecords(encodeAudit(r)), [r]);
    assert.equal(records()[0]!.subject, n.subjects.audit('-'));
    assert.deepEqual(index(), []);
  });

  it('flushes by itself after flushMs, and at once at maxRecords', async () => {
    const sent: AuditMessage[] = [];
    const w = createAuditWriter({ names: n, send: (m) => sent.push(m), flushMs: 5 });
    w.write(rec({ stage: 'ingest', outcome: 'stored' }));
    const t0 = Date.now();
    while (!sent.length && Date.now() - t0 < 2_000) await new Promise((r) => setImmediate(r));
    assert.equal(decodeAuditRecords(sent[0]!.data).length, 1);
    const { w: w2, records } = writer({ maxRecords: 3 });
    for (let i = 0; i < 3; i++) w2.write(rec({ stage: 'deliver', outcome: 'failed', attempt: i + 1 }));
    assert.equal(records().length, 1, 'flushed without waiting');
  });

  it('a step written again within the fold window (a redelivery done again) reads once; an own id keeps two repairs apart', () => {
    const twice = [rec({ stage: 'transform', outcome: 'transformed', connector: 'crm', at: at(0) }), rec({ stage: 'transform', outcome: 'transformed', connector: 'crm', at: at(30_000) })];
    assert.equal(foldAuditRecords(twice).length, 1);
    assert.equal(foldAuditRecords([twice[0]!, { ...twice[1]!, at: at(600_000) }]).length, 2, 'outside the window: two steps, as the server kept them');
    const repairs = [rec({ stage: 'reconcile', outcome: 'repair', id: 'audit.reconcile.repair.a' }), rec({ stage: 'reconcile', outcome: 'repair', id: 'audit.reconcile.repair.b' })];
    assert.equal(foldAuditRecords(repairs).length, 2);
    const noEvent = [rec({ stage: 'connector', outcome: 'paused', eventId: undefined }), rec({ stage: 'connector', outcome: 'paused', eventId: undefined })];
    assert.equal(foldAuditRecords(noEvent).length, 2, 'without an event id each write is its own step (as before: a random msg id)');
  });
});
