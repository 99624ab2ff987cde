import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { DeliveryCommand } from '@bus/connectors';
import { compareRecord, redact, sameValue, unknownRecord } from './index.js';

const expected = (version: number, fields: Record<string, unknown>, sourceOwned = Object.keys(fields)) => ({
  id: 'c:e1', connector: 'c', action: 'upsert', target: { type: 'contact', id: 'a' }, fields, sourceOwned, entity: { type: 'contact', id: 'a' }, version,
  event: { id: 'e1', type: 'contact.updated', source: 's', occurredAt: '2026-01-01T00:00:00.000Z', schemaVersion: 1 }, correlationId: 'x', idempotencyKey: 'c:e1',
}) as DeliveryCommand;
const at = (version: number, fields: Record<string, unknown>) => ({ key: { type: 'contact', id: 'a' }, version, fields });

describe('compareRecord', () => {
  it('equal: no difference, also across a target that returns numbers as strings and null for absent', () => {
    assert.equal(compareRecord(expected(2, { total: 42, note: undefined }), at(2, { total: '42', note: null, leadScore: 7 })), undefined);
    assert.ok(sameValue({ b: 1, a: [1, '2'] }, { a: ['1', 2], b: '1' }));
    assert.ok(!sameValue('a', 'b'));
    assert.ok(sameValue('42', 42) && sameValue(undefined, null) && sameValue(new Date('2026-01-01T00:00:00Z'), '2026-01-01T00:00:00.000Z'));
    assert.ok(!sameValue('1', 2) && !sameValue(null, 0) && !sameValue({ a: 1 }, '{"a":1}') && !sameValue([1], 1));
  });
  it('missing, stale by version, stale by a source-owned field, target newer', () => {
    assert.deepEqual(compareRecord(expected(2, { email: 'x' }), undefined), { kind: 'missing', target: { type: 'contact', id: 'a' }, sourceVersion: 2, fields: [{ field: 'email', source: 'x' }] });
    assert.equal(compareRecord(expected(3, { email: 'x' }), at(2, { email: 'x' }))?.kind, 'stale');
    const edited = compareRecord(expected(2, { email: 'x' }), at(2, { email: 'y' }));
    assert.deepEqual([edited?.kind, edited?.fields], ['stale', [{ field: 'email', source: 'x', target: 'y' }]]);
    assert.equal(compareRecord(expected(2, { email: 'x' }), at(5, { email: 'y' }))?.kind, 'target-newer');
  });
  it('a delete expects no record: absent is equal, a record at that version or older is stale, a newer one target-newer', () => {
    const del = { ...expected(4, {}), action: 'delete' } as DeliveryCommand;
    assert.equal(compareRecord(del, undefined), undefined);
    assert.deepEqual(compareRecord(del, at(3, { email: 'x' })), { kind: 'stale', target: { type: 'contact', id: 'a' }, sourceVersion: 4, targetVersion: 3, fields: [], sourceDeleted: true });
    assert.equal(compareRecord(del, at(4, {}))?.kind, 'stale');
    assert.equal(compareRecord(del, at(5, {}))?.kind, 'target-newer');
  });
  it('a field the source does not own is not compared', () => {
    assert.equal(compareRecord(expected(2, { email: 'x', stage: 'new' }, ['email']), at(2, { email: 'x', stage: 'won' })), undefined);
  });
  it('unknown records and redaction: personal values become a short hash that still shows equality', () => {
    assert.equal(unknownRecord(at(1, {})).kind, 'unknown-to-source');
    const d = compareRecord(expected(2, { email: 'x', total: 1 }), at(2, { email: 'y', total: 2 }))!;
    const r = redact(d, new Set(['email']));
    const email = r.fields.find((f) => f.field === 'email')!;
    assert.match(String(email.source), /^redacted:[0-9a-f]{8}$/);
    assert.notEqual(email.source, email.target);
    assert.deepEqual(r.fields.find((f) => f.field === 'total'), { field: 'total', source: 1, target: 2 });
  });
});
