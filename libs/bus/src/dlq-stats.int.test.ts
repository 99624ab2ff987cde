import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { createMetrics } from '@bus/observability';
import { freePort, startNats, startProcess, type TestNats, uniquePrefix, waitFor } from '@bus/testkit';
import type { Bus } from './connect.js';
import type { DeadLetter } from './dead-letter.js';
import { dlqStats, watchDlq } from './dlq-stats.js';
import { silent, testBus } from './test-support.js';

let n = 0;
function entry(stage: string, connector: string | undefined): DeadLetter {
  const seq = ++n;
  return {
    id: `EVENTS.${seq}`, stage, connector, failureClass: 'business', code: 'NOPE', reason: 'rejected', attempts: 1,
    history: [{ attempt: 1, failureClass: 'business', at: new Date().toISOString() }], deadLetteredAt: new Date().toISOString(),
    original: { stream: 'EVENTS', seq, subject: 'events.t.x', headers: {}, data: new Uint8Array([seq]) }, replays: 0,
  };
}

async function gauge(metrics: ReturnType<typeof createMetrics>, name: 'bus_dlq_messages' | 'bus_dlq_oldest_age_seconds', stage: string, connector: string) {
  const m = await metrics.registry.getSingleMetric(name)!.get();
  return m.values.find((v) => v.labels.stage === stage && v.labels.connector === connector)?.value;
}

describe('DLQ metrics: size and oldest age per stage and connector', () => {
  let nats: TestNats;
  let bus: Bus;
  before(async () => {
    nats = await startNats();
    bus = await testBus(nats.url, uniquePrefix());
  });
  after(async () => {
    await bus?.close();
    await nats?.stop({ removeStore: true });
  });

  it('dlqStats counts per subject and finds each one\'s oldest entry without scanning', async () => {
    const first = await bus.deadLetter(entry('deliver', 'crm'));
    await bus.deadLetter(entry('transform', 'warehouse'));
    await bus.deadLetter(entry('deliver', 'crm'));
    const ingest = await bus.deadLetter(entry('ingest', undefined));
    const stats = await dlqStats(bus.jsm, bus.names);
    assert.deepEqual(stats.map((s) => [s.stage, s.connector, s.messages, s.oldestSeq]), [
      ['deliver', 'crm', 2, first.seq], ['ingest', '-', 1, ingest.seq], ['transform', 'warehouse', 1, first.seq + 1],
    ]);
    const stored = await bus.jsm.streams.getMessage(bus.names.streams.dlq, { seq: first.seq });
    assert.equal(stats[0]!.oldestAtMs, Date.parse(stored!.timestamp));
  });

  it('the gauges show count and oldest age per connector, and an emptied connector reads 0', async () => {
    const metrics = createMetrics('t');
    const watch = watchDlq({ jsm: bus.jsm, names: bus.names, metrics, log: silent, intervalMs: 0 });
    try {
      const t0 = Date.now();
      await watch.refresh();
      const t1 = Date.now();
      assert.equal(await gauge(metrics, 'bus_dlq_messages', 'deliver', 'crm'), 2);
      assert.equal(await gauge(metrics, 'bus_dlq_messages', 'transform', 'warehouse'), 1);
      assert.equal(await gauge(metrics, 'bus_dlq_messages', 'ingest', '-'), 1);
      const [crm] = (await dlqStats(bus.jsm, bus.names)).filter((s) => s.connector === 'crm');
      const age = (await gauge(metrics, 'bus_dlq_oldest_age_seconds', 'deliver', 'crm'))!;
      // the oldest crm entry's age at the read, not the newest one's
      assert.ok(age >= (t0 - crm!.oldestAtMs!) / 1000 - 0.002 && age <= (t1 - crm!.oldestAtMs!) / 1000 + 0.002, `age ${age}`);

      for (const s of [crm!.oldestSeq!, crm!.oldestSeq! + 2]) await bus.jsm.streams.deleteMessage(bus.names.streams.dlq, s);
      await watch.refresh();
      assert.equal(await gauge(metrics, 'bus_dlq_messages', 'deliver', 'crm'), 0);
      assert.equal(await gauge(metrics, 'bus_dlq_oldest_age_seconds', 'deliver', 'crm'), 0);
      assert.equal(await gauge(metrics, 'bus_dlq_messages', 'transform', 'warehouse'), 1);
    } finally {
      watch.stop();
    }
  });

  it('every service on runService serves them on /metrics, refreshed on its interval', async () => {
    const prefix = uniquePrefix();
    const own = await testBus(nats.url, prefix);
    const port = await freePort();
    const p = startProcess({
      command: process.execPath, args: [fileURLToPath(new URL('./fixtures/tiny-service.js', import.meta.url))],
      env: { NATS_URL: nats.url, BUS_PREFIX: prefix, TINY_OPS_PORT: String(port), BUS_DLQ_STATS_INTERVAL_MS: '200', LOG_LEVEL: 'warn' },
    });
    const metrics = async () => (await fetch(`http://127.0.0.1:${port}/metrics`).catch(() => undefined))?.text();
    try {
      await own.deadLetter(entry('deliver', 'crm'));
      await waitFor(async () => /bus_dlq_messages\{stage="deliver",connector="crm",service="tiny"\} 1\n/.test((await metrics()) ?? ''),
        { what: 'one crm entry on /metrics', timeoutMs: 15_000 });
      await own.deadLetter(entry('deliver', 'crm'));
      await waitFor(async () => /bus_dlq_messages\{stage="deliver",connector="crm",service="tiny"\} 2\n/.test((await metrics()) ?? ''),
        { what: 'the second entry counted by the next refresh' });
      assert.match((await metrics())!, /bus_dlq_oldest_age_seconds\{stage="deliver",connector="crm",service="tiny"\} \d/);
      p.kill('SIGTERM');
      assert.deepEqual(await p.exited, { code: 0, signal: null });
    } finally {
      p.kill('SIGKILL');
      await own.close();
    }
  });
});
