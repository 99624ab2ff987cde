import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type BusCounts, checkInvariants, type Sent } from './invariants.js';
import type { Apply } from './target.js';

const quiet: BusCounts = { deadLettered: 0, pending: 0, details: [] };
let seq = 0;
const applied = (entity: string, ...versions: number[]): Apply[] =>
  versions.map((version) => ({ entity, version, action: 'upsert', seq: ++seq, atMs: seq, idempotencyKey: `k-${entity}-${version}` }));
const sentOf = (entity: string, last: number): Sent[] => Array.from({ length: last }, (_, i) => ({ entity, version: i + 1 }));
const finalOf = (applies: Apply[]) => {
  const m = new Map<string, number>();
  for (const a of applies) m.set(a.entity, a.version); // last write wins, like the target
  return m;
};

describe('checkInvariants', () => {
  const sent = [...sentOf('contact/a', 3), ...sentOf('contact/b', 2)];

  it('a clean run passes: every version once, in order, each entity at its latest', () => {
    const applies = [...applied('contact/a', 1, 2), ...applied('contact/b', 1), ...applied('contact/a', 3), ...applied('contact/b', 2)];
    const v = checkInvariants('strict', sent, applies, finalOf(applies), quiet);
    assert.equal(v.ok, true, v.examples.join('\n'));
    assert.deepEqual(v.examples, []);
  });

  it('a version applied twice → appliedTwice 1, named in the examples', () => {
    const applies = [...applied('contact/a', 1, 2, 2, 3), ...applied('contact/b', 1, 2)];
    const v = checkInvariants('strict', sent, applies, finalOf(applies), quiet);
    assert.equal(v.ok, false);
    assert.deepEqual(v.counts, { appliedTwice: 1, outOfOrder: 0, skipped: 0, notLatest: 0, deadLettered: 0, pending: 0, unsent: 0 });
    assert.match(v.examples.join('\n'), /appliedTwice: contact\/a v2 applied 2 times/);
  });

  it('an older version after a newer one → outOfOrder, and the entity is not at its latest', () => {
    const applies = [...applied('contact/a', 1, 3, 2), ...applied('contact/b', 1, 2)];
    const v = checkInvariants('strict', sent, applies, finalOf(applies), quiet);
    assert.equal(v.counts.outOfOrder, 1);
    assert.equal(v.counts.notLatest, 1);
    assert.match(v.examples.join('\n'), /outOfOrder: contact\/a v2 applied \(seq \d+\) after v3/);
    assert.match(v.examples.join('\n'), /notLatest: contact\/a ends at v2, latest sent v3/);
  });

  it('strict: a version never applied → skipped; latest: the same run passes (skipping is allowed there)', () => {
    const applies = [...applied('contact/a', 1, 3), ...applied('contact/b', 2)];
    const strict = checkInvariants('strict', sent, applies, finalOf(applies), quiet);
    assert.equal(strict.counts.skipped, 2);
    assert.match(strict.examples.join('\n'), /skipped: contact\/a v2 never applied/);
    assert.equal(checkInvariants('latest', sent, applies, finalOf(applies), quiet).ok, true);
  });

  it('latest: older over newer still fails', () => {
    const applies = [...applied('contact/a', 3, 1), ...applied('contact/b', 2)];
    const v = checkInvariants('latest', sent, applies, finalOf(applies), quiet);
    assert.equal(v.counts.outOfOrder, 1);
    assert.equal(v.counts.notLatest, 1);
  });

  it('an entity never written → notLatest ("ends at nothing")', () => {
    const applies = applied('contact/a', 1, 2, 3);
    const v = checkInvariants('latest', sent, applies, finalOf(applies), quiet);
    assert.equal(v.counts.notLatest, 1);
    assert.match(v.examples.join('\n'), /contact\/b ends at nothing, latest sent v2/);
  });

  it('dead-lettered or pending work fails the run even when the target looks right', () => {
    const applies = [...applied('contact/a', 1, 2, 3), ...applied('contact/b', 1, 2)];
    const v = checkInvariants('strict', sent, applies, finalOf(applies), { deadLettered: 1, pending: 2, details: ['dlq deliver crm: DELIVER_ORDER_GAP (business)'] });
    assert.equal(v.ok, false);
    assert.deepEqual([v.counts.deadLettered, v.counts.pending], [1, 2]);
    assert.match(v.examples.join('\n'), /bus: dlq deliver crm: DELIVER_ORDER_GAP/);
  });

  it('a version sent twice is still expected once; an apply of something never sent is counted', () => {
    const applies = [...applied('contact/a', 1, 2, 3), ...applied('contact/b', 1, 2), ...applied('contact/z', 1)];
    const v = checkInvariants('strict', [...sent, { entity: 'contact/a', version: 2 }], applies, finalOf(applies), quiet);
    assert.deepEqual([v.counts.appliedTwice, v.counts.unsent], [0, 1]);
  });
});
