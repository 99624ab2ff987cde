import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { waitFor } from '@bus/testkit';
import { DEFAULT_FAULT_MIX, faultMix, lookupFails, NO_FAULTS, putFault } from './fault-mix.js';
import { startMisbehavingTarget } from './target.js';

const keys = Array.from({ length: 400 }, (_, i) => `crm:evt-${i}`);
const decisions = (seed: number) => keys.flatMap((k) => [1, 2, 3].map((n) => putFault(faultMix(), seed, k, n, 0, 3)));

describe('fault mix', () => {
  it('same seed → same decisions, whatever order the calls come in; another seed → others', () => {
    assert.deepEqual(decisions(7), decisions(7));
    const byKey = (order: string[]) => new Map(order.map((k) => [k, [1, 2, 3].map((n) => putFault(faultMix(), 7, k, n, 0, 3)).join()]));
    assert.deepEqual(byKey(keys.toReversed()), byKey(keys));
    assert.notDeepEqual(decisions(7), decisions(8));
    assert.equal(lookupFails(faultMix(), 7, '/contacts/c1', 4), lookupFails(faultMix(), 7, '/contacts/c1', 4));
  });

  it('the fractions come out near the configured mix over many calls', () => {
    const all = [1, 2, 3, 4, 5].flatMap((seed) => decisions(seed));
    const share = (kind: string) => all.filter((d) => d === kind).length / all.length;
    for (const kind of ['unavailable', 'rateLimited', 'applyThenHang', 'hang', 'slow'] as const) {
      assert.ok(Math.abs(share(kind) - DEFAULT_FAULT_MIX[kind]) < 0.03, `${kind}: ${share(kind)} vs ${DEFAULT_FAULT_MIX[kind]}`);
    }
  });

  it('after maxFaultsPerKey failed answers a key is answered normally (slow still allowed)', () => {
    const mix = faultMix({ unavailable: 1, rateLimited: 0, applyThenHang: 0, hang: 0, slow: 0 });
    assert.deepEqual([0, 1, 2, 3].map((f) => putFault(mix, 1, 'k', f + 1, f, 3)), ['unavailable', 'unavailable', 'unavailable', 'ok']);
  });

  it('a bad mix is refused, every problem named', () => {
    assert.throws(() => faultMix({ unavailable: 0.8, hang: 0.5, lookupUnavailable: 2 }), /lookupUnavailable must be a fraction 0…1, got 2; the PUT fractions add up to 1.520, more than 1/);
  });
});

describe('misbehaving target', () => {
  const put = (url: string, path: string, version: number, key: string, timeoutMs = 2_000) => fetch(`${url}${path}`, {
    method: 'PUT', headers: { 'content-type': 'application/json', 'idempotency-key': key, 'x-api-key': 'k' },
    body: JSON.stringify({ key: { type: 'contact', id: path.split('/').pop() }, version, fields: { v: version } }), signal: AbortSignal.timeout(timeoutMs),
  }).then((r) => r.status, () => 'timeout' as const);

  it('no faults: applies in order, ignores a repeated key (applies it again), answers lookups', async () => {
    const t = await startMisbehavingTarget({ seed: 1, faults: NO_FAULTS, hangMs: 100, apiKey: { header: 'x-api-key', value: 'k' } });
    try {
      assert.equal(await put(t.url, '/contacts/c1', 1, 'a'), 200);
      assert.equal(await put(t.url, '/contacts/c1', 1, 'a'), 200);
      assert.deepEqual(t.applies.map((a) => [a.entity, a.version, a.seq]), [['contact/c1', 1, 1], ['contact/c1', 1, 2]]);
      const got = await fetch(`${t.url}/contacts/c1`, { headers: { 'x-api-key': 'k' } });
      assert.deepEqual(await got.json(), { type: 'contact', id: 'c1', version: 1, fields: { v: 1 } });
      assert.equal((await fetch(`${t.url}/contacts/none`, { headers: { 'x-api-key': 'k' } })).status, 404);
      assert.equal((await fetch(`${t.url}/contacts/c1`)).status, 401, 'without the API key');
    } finally {
      await t.close();
    }
  });

  it('honouring keys when told to: a repeated key is answered, not applied', async () => {
    const t = await startMisbehavingTarget({ seed: 1, faults: NO_FAULTS, hangMs: 100, ignoreIdempotencyKeys: false });
    try {
      await put(t.url, '/contacts/c1', 1, 'a');
      await put(t.url, '/contacts/c1', 1, 'a');
      assert.deepEqual([t.applies.length, t.counts.dedupedByKey], [1, 1]);
    } finally {
      await t.close();
    }
  });

  it('apply-then-hang applies and never answers; hang neither; 503 and 429 (Retry-After) apply nothing', async () => {
    const only = (kind: 'applyThenHang' | 'hang' | 'unavailable' | 'rateLimited') => ({ ...NO_FAULTS, [kind]: 1 });
    for (const [kind, expected, appliedCount] of [['applyThenHang', 'timeout', 1], ['hang', 'timeout', 0], ['unavailable', 503, 0], ['rateLimited', 429, 0]] as const) {
      const t = await startMisbehavingTarget({ seed: 3, faults: only(kind), hangMs: 1_000 });
      try {
        assert.equal(await put(t.url, '/contacts/c1', 1, 'a', 300), expected, kind);
        assert.equal(t.applies.length, appliedCount, kind);
        await waitFor(() => t.idleFor(0), { what: `${kind}: the held call released`, timeoutMs: 3_000 });
      } finally {
        await t.close();
      }
    }
  });
});
