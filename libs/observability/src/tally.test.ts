import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Counter, Gauge, Registry } from 'prom-client';
import { gaugeOf, onCollect, tally } from './tally.js';

describe('tally: per-message counts added when the metric is read', () => {
  it('counts reach the counter at the next read, added to what others counted under the same labels', async () => {
    const registry = new Registry();
    const counter = new Counter({ name: 't_total', help: 't', labelNames: ['outcome'] as const, registers: [registry] });
    const a = tally(counter, { outcome: 'done' });
    const b = tally(counter, { outcome: 'done' });
    for (let i = 0; i < 5; i++) a.inc();
    b.inc();
    counter.inc({ outcome: 'done' }, 10);
    assert.match(await registry.metrics(), /t_total\{outcome="done"\} 16/);
    a.inc();
    assert.equal((await counter.get()).values[0]?.value, 17);
    a.inc();
    a.close(); // what is left is added; later incs are not
    a.inc();
    assert.equal((await counter.get()).values[0]?.value, 18);
  });

  it('a gauge follows the number at each read; closing takes back what it reported', async () => {
    const gauge = new Gauge({ name: 't_in_flight', help: 't', labelNames: ['consumer'] as const, registers: [] });
    let x = 3;
    let y = 2;
    const gx = gaugeOf(gauge, { consumer: 'c' }, () => x);
    gaugeOf(gauge, { consumer: 'c' }, () => y);
    assert.equal((await gauge.get()).values[0]?.value, 5);
    x = 1;
    y = 0;
    assert.equal((await gauge.get()).values[0]?.value, 1);
    x = 4;
    gx.close();
    assert.equal((await gauge.get()).values[0]?.value, 0);
  });

  it('a collect the metric already had still runs', async () => {
    let calls = 0;
    const gauge = new Gauge({ name: 't_own', help: 't', registers: [], collect() { calls++; } });
    onCollect(gauge, () => undefined);
    await gauge.get();
    assert.equal(calls, 1);
  });
});
