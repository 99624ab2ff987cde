import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { type AuditRecord, auditRecordsOf } from '@bus/bus';
import { startNats, type TestNats, uniquePrefix, waitFor } from '@bus/testkit';
import { Webhook } from 'standardwebhooks';
import { acquireLease } from '@bus/lease';
import { sourceCheckpointKey, sourceLeaseKey } from './checkpoint.js';
import type { Intake } from './intake.js';
import { pollSourceChanges } from './poll.js';
import { type AnySource, defineSource } from './source.js';
import { events, ingestFor, quarantined, silent, standardSource, WH_SECRET } from './test-support.js';

interface ProviderEvent {
  id: string;
  payload: { type: string; data: Record<string, unknown> };
}

/** A provider's events API on loopback: `GET /events?after=<n>&limit=<n>` → `{ data, next, has_more }`, oldest first. */
async function startProvider() {
  const events: ProviderEvent[] = [];
  const requests: { after: number; limit: number }[] = [];
  const failures = new Map<number, number>(); // after → how many more times to answer 500
  let gate: { promise: Promise<void>; open: () => void } | undefined;
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://provider');
    const after = Number(url.searchParams.get('after') ?? 0);
    const limit = Number(url.searchParams.get('limit') ?? 10);
    requests.push({ after, limit });
    void (gate?.promise ?? Promise.resolve()).then(() => {
      const failing = failures.get(after) ?? 0;
      if (failing > 0) {
        failures.set(after, failing - 1);
        res.writeHead(500, { 'content-type': 'application/json' }).end('{"error":"provider down"}');
        return;
      }
      const data = events.slice(after, after + limit);
      res.writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ data, next: String(after + data.length), has_more: after + data.length < events.length }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    events, requests, failures,
    hold() {
      let open!: () => void;
      gate = { promise: new Promise<void>((resolve) => (open = resolve)), open: () => open() };
    },
    release: () => gate?.open(),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
type Provider = Awaited<ReturnType<typeof startProvider>>;

/** The suite's Standard Webhooks source, with a listing of the provider's events API. */
function listedSource(pageSize = 2, requiredEnv?: string[]): AnySource {
  return defineSource({
    ...standardSource(),
    changes: {
      pageSize,
      ...(requiredEnv ? { requiredEnv } : {}),
      async list(checkpoint, ctx) {
        const res = await ctx.fetch(`${ctx.env.PROVIDER_URL}/events?after=${checkpoint ?? 0}&limit=${ctx.limit}`, { signal: ctx.signal });
        if (!res.ok) throw new Error(`the provider's events API answered ${res.status}`);
        const body = (await res.json()) as { data: ProviderEvent[]; next: string; has_more: boolean };
        // the delivery id travels in webhook-id, as in the webhook
        return { items: body.data.map((e) => ({ payload: e.payload, headers: { 'Webhook-Id': e.id } })), checkpoint: body.next, more: body.has_more };
      },
    },
  });
}

let n = 0;
function providerEvent(data: Record<string, unknown> = {}): ProviderEvent {
  n++;
  return { id: `msg_poll_${n}_${Date.now()}`, payload: { type: 'contact.updated', data: { id: `c${n}`, version: 1, email: 'a@example.com', ...data } } };
}

function signed(e: ProviderEvent) {
  const payload = JSON.stringify(e.payload);
  const at = new Date();
  return {
    payload,
    headers: {
      'content-type': 'application/json', 'webhook-id': e.id, 'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
      'webhook-signature': new Webhook(WH_SECRET).sign(e.id, at, payload),
    },
  };
}

describe('source changes: missed webhooks found by listing', () => {
  let nats: TestNats;
  let provider: Provider;
  const open: { close(): Promise<void> }[] = [];
  before(async () => {
    nats = await startNats();
  });
  after(async () => {
    for (const o of open) await o.close();
    await nats.stop({ removeStore: true });
  });

  /** A fresh bus namespace, provider and intake per test: checkpoints and leases never leak between tests. */
  async function setup(source = listedSource()) {
    provider = await startProvider();
    const t = await ingestFor(nats.url, uniquePrefix(), [source]);
    open.push(provider, { close: () => t.app.close() }, t.bus);
    const poll = (extra: Partial<Parameters<typeof pollSourceChanges>[0]> = {}) =>
      pollSourceChanges({ bus: t.bus, intake: t.intake, source: 'standard', env: { PROVIDER_URL: provider.url }, log: silent, registry: t.metrics.registry, ...extra });
    const stored = async (id: string) => (await events(t.bus, 'standard')).filter((e) => e.msgId === `standard:${id}`);
    const checkpoint = async () => (await (await t.bus.kv(t.bus.names.kv.reconcile)).get(sourceCheckpointKey('standard')))?.json<{ checkpoint: string }>()?.checkpoint;
    return { ...t, poll, stored, checkpoint };
  }

  it('a webhook that never reached ingest is stored once with its webhook event id; one that did arrive is a duplicate; a second poll stores nothing', async () => {
    const t = await setup();
    const arrived = providerEvent();
    const missed = providerEvent();
    provider.events.push(arrived, missed);
    const w = signed(arrived);
    assert.equal((await t.app.inject({ method: 'POST', url: '/webhooks/standard', payload: w.payload, headers: w.headers })).statusCode, 202);

    const first = await t.poll();
    assert.equal(first.outcome, 'completed', first.reason);
    assert.deepEqual({ listed: first.listed, stored: first.stored, duplicates: first.duplicates, pages: first.pages }, { listed: 2, stored: 1, duplicates: 1, pages: 1 });
    assert.equal((await t.stored(missed.id)).length, 1, 'the missed one is stored exactly once');
    assert.equal((await t.stored(arrived.id)).length, 1, 'the arrived one is not stored again');
    const [env] = await t.stored(missed.id);
    assert.equal(env!.value.id, `standard:${missed.id}`, 'the same event id the webhook would have had');
    assert.equal(env!.value.entity.id, missed.payload.data.id);

    const second = await t.poll();
    assert.deepEqual([second.outcome, second.listed, second.stored], ['completed', 0, 0]);
    // the webhook of the missed one arriving late is a duplicate too
    const late = signed(missed);
    const res = await t.app.inject({ method: 'POST', url: '/webhooks/standard', payload: late.payload, headers: late.headers });
    assert.equal(res.json().status, 'duplicate');
    assert.equal((await events(t.bus, 'standard')).length, 2);
  });

  it('listed again from the start (checkpoint deleted) → every item is a duplicate, nothing stored twice', async () => {
    const t = await setup();
    provider.events.push(providerEvent(), providerEvent(), providerEvent());
    assert.equal((await t.poll()).stored, 3);
    await (await t.bus.kv(t.bus.names.kv.reconcile)).delete(sourceCheckpointKey('standard'));
    const again = await t.poll();
    assert.deepEqual([again.listed, again.stored, again.duplicates], [3, 0, 3]);
    assert.equal((await events(t.bus, 'standard')).length, 3);
  });

  it('provider fails on page 2 → the checkpoint is after page 1; the next poll resumes at page 2 and stores nothing twice', async () => {
    const t = await setup(listedSource(2));
    provider.events.push(...Array.from({ length: 5 }, () => providerEvent()));
    provider.failures.set(2, 1);
    const failed = await t.poll();
    assert.equal(failed.outcome, 'failed');
    assert.match(failed.reason!, /answered 500/);
    assert.deepEqual([failed.pages, failed.stored, failed.checkpoint], [1, 2, '2']);
    assert.equal(await t.checkpoint(), '2');
    assert.equal((await events(t.bus, 'standard')).length, 2);

    const resumed = await t.poll();
    assert.equal(resumed.outcome, 'completed');
    assert.equal(resumed.from, '2');
    assert.deepEqual(provider.requests.slice(-3).map((r) => r.after), [2, 2, 4], 'resumed at page 2, then page 3');
    assert.deepEqual([resumed.stored, resumed.duplicates, resumed.pages], [3, 0, 2]);
    const ids = (await events(t.bus, 'standard')).map((e) => e.msgId);
    assert.equal(ids.length, 5);
    assert.equal(new Set(ids).size, 5);
    assert.equal(await t.checkpoint(), '5');
  });

  it('stopped in the middle of a page → the checkpoint stays before that page; the next poll re-lists it and stores only the rest', async () => {
    const t = await setup(listedSource(2));
    provider.events.push(...Array.from({ length: 4 }, () => providerEvent()));
    const ctl = new AbortController();
    let calls = 0;
    const stopping: Intake = {
      ...t.intake,
      async receiveListed(...args: Parameters<Intake['receiveListed']>) {
        const answer = await t.intake.receiveListed(...args);
        if (++calls === 3) ctl.abort(new Error('shutting down'));
        return answer;
      },
    };
    const stopped = await t.poll({ intake: stopping, signal: ctl.signal });
    assert.equal(stopped.outcome, 'aborted');
    assert.deepEqual([stopped.pages, stopped.stored], [1, 2], 'the half-stored page is not counted');
    assert.equal(await t.checkpoint(), '2');
    assert.equal((await events(t.bus, 'standard')).length, 3, 'the first item of page 2 was stored before the stop');

    const next = await t.poll();
    assert.deepEqual([next.outcome, next.listed, next.stored, next.duplicates], ['completed', 2, 1, 1]);
    assert.equal((await events(t.bus, 'standard')).length, 4);
  });

  it('an invalid listed payload is quarantined in the DLQ (with the raw payload and headers), not lost; the checkpoint moves on', async () => {
    const t = await setup();
    const bad = providerEvent({ email: 'not-an-email' });
    provider.events.push(bad, providerEvent());
    const r = await t.poll();
    assert.deepEqual([r.outcome, r.quarantined, r.stored], ['completed', 1, 1]);
    const [entry] = (await quarantined(t.bus)).filter((q) => q.value.original.msgId === bad.id);
    assert.ok(entry, 'kept in the DLQ');
    assert.equal(entry.value.code, 'INGEST_PAYLOAD_INVALID');
    assert.deepEqual(JSON.parse(Buffer.from(entry.value.original.data).toString()), bad.payload);
    assert.equal(entry.value.original.headers['webhook-id'], bad.id);
    assert.equal(await t.checkpoint(), '2');
  });

  it('dry run: counts what it would store, stores nothing, keeps the checkpoint, takes no lease', async () => {
    const t = await setup();
    const arrived = providerEvent();
    provider.events.push(arrived, providerEvent(), providerEvent({ email: 'bad' }));
    const w = signed(arrived);
    await t.app.inject({ method: 'POST', url: '/webhooks/standard', payload: w.payload, headers: w.headers });
    const before = (await events(t.bus, 'standard')).length;
    const dlqBefore = (await quarantined(t.bus)).length;
    const r = await t.poll({ dryRun: true });
    assert.deepEqual([r.outcome, r.dryRun, r.listed, r.stored, r.duplicates, r.quarantined, r.pages], ['completed', true, 3, 1, 1, 1, 2]);
    assert.equal((await events(t.bus, 'standard')).length, before);
    assert.equal((await quarantined(t.bus)).length, dlqBefore);
    assert.equal(await t.checkpoint(), undefined);
    assert.equal(await (await t.bus.kv(t.bus.names.kv.leases)).get('source.standard'), null);
    assert.equal((await t.poll()).stored, 1, 'the real run afterwards stores what the dry run counted');
  });

  it('two pollers at once → one runs, the other is busy; after it, the next poll runs', async () => {
    const t = await setup();
    provider.events.push(providerEvent());
    provider.hold();
    const first = t.poll({ holder: 'one' });
    await waitFor(() => provider.requests.length === 1, { what: 'the first poller to call the provider' });
    const second = await t.poll({ holder: 'two' });
    assert.equal(second.outcome, 'busy');
    assert.equal(provider.requests.length, 1, 'the busy poller never called the provider');
    provider.release();
    const done = await first;
    assert.deepEqual([done.outcome, done.stored], ['completed', 1]);
    assert.equal((await t.poll({ holder: 'two' })).outcome, 'completed', 'the lease was released');
  });

  it('a poller that died holding the lease: polls are busy until its ttl passes, then one resumes from the checkpoint', async () => {
    const t = await setup();
    provider.events.push(providerEvent(), providerEvent());
    assert.equal((await t.poll()).stored, 2);
    provider.events.push(providerEvent());
    // the dead poller: holds the lease, never renews it, never releases it
    const dead = await acquireLease({ kv: await t.bus.kv(t.bus.names.kv.leases), key: sourceLeaseKey('standard'), holder: 'dead', ttlMs: 400, autoRenew: false });
    assert.ok(dead);
    assert.equal((await t.poll()).outcome, 'busy');
    const resumed = await waitFor(async () => {
      const r = await t.poll({ holder: 'heir' });
      return r.outcome === 'completed' ? r : undefined;
    }, { what: 'a poll after the dead poller\'s lease expired' });
    assert.deepEqual([resumed.from, resumed.stored, resumed.duplicates], ['2', 1, 0]);
  });

  it('an audit record per run, metrics per source, the run id on the stored events\' audit records', async () => {
    const t = await setup();
    provider.events.push(providerEvent(), providerEvent());
    const r = await t.poll({ runId: 'run-audit-1' });
    const recordsOf = async (stage: string, outcome: string) => {
      const got: { value: AuditRecord }[] = [];
      for await (const value of auditRecordsOf(t.bus, stage, outcome)) got.push({ value });
      return got;
    };
    const runs = await waitFor(async () => {
      const got = (await recordsOf('reconcile', 'source-polled')).filter((a) => a.value.correlationId === 'run-audit-1');
      return got.length ? got : undefined;
    }, { what: 'the run\'s audit record' });
    assert.equal(runs.length, 1);
    assert.equal(runs[0]!.value.details?.stored, 2);
    const storedAudit = await waitFor(async () => {
      const got = await recordsOf('ingest', 'stored');
      return got.length === 2 ? got : undefined;
    }, { what: 'two stored audit records' });
    assert.deepEqual(storedAudit.map((a) => a.value.details), [{ via: 'listing', runId: r.runId }, { via: 'listing', runId: r.runId }]);
    const text = await t.metrics.registry.metrics();
    assert.match(text, /source_poll_items_total\{source="standard",result="stored"[^}]*\} 2/);
    assert.match(text, /source_poll_runs_total\{source="standard",outcome="completed"[^}]*\} 1/);
    assert.match(text, /source_poll_last_success_timestamp_seconds\{source="standard"[^}]*\} \d/);
  });

  it('required environment unset → skipped with the variable named; a bad page → failed, checkpoint kept', async () => {
    const t = await setup(listedSource(2, ['PROVIDER_API_KEY']));
    const skipped = await t.poll();
    assert.deepEqual([skipped.outcome, skipped.reason], ['skipped', 'PROVIDER_API_KEY unset']);
    assert.equal(provider.requests.length, 0);

    const broken = defineSource({ ...standardSource(), changes: { list: async () => ({ items: [], checkpoint: '1', more: 'yes' }) as never } });
    const b = await setup(broken);
    const r = await b.poll();
    assert.equal(r.outcome, 'failed');
    assert.match(r.reason!, /SOURCE_CHANGES_INVALID.*more must be a boolean/);
    assert.equal(await b.checkpoint(), undefined);
  });

  it('an intake made with webhooks: false needs no secrets and stores listed items', async () => {
    const t = await setup();
    const { createIntake } = await import('./intake.js');
    const { createIntakeMetrics } = await import('./metrics.js');
    const { Registry } = await import('prom-client');
    const bare = createIntake({ bus: t.bus, sources: [listedSource()], env: {}, log: silent, metrics: createIntakeMetrics(new Registry()), webhooks: false });
    provider.events.push(providerEvent());
    const r = await pollSourceChanges({ bus: t.bus, intake: bare, source: 'standard', env: { PROVIDER_URL: provider.url }, log: silent });
    assert.deepEqual([r.outcome, r.stored], ['completed', 1]);
    await assert.rejects(bare.receive('standard', {}, Buffer.from('{}')), /webhooks: false/);
  });
});
