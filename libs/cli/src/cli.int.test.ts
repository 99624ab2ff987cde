import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { type Bus, connectBus, type DeadLetter, encodeDeadLetter, loadBusConfig } from '@bus/bus';
import { reportStore, type RunReport } from '@bus/reconcile';
import { freePort, startNats, startProcess, type TestNats, uniquePrefix, waitFor } from '@bus/testkit';
import type { Command } from 'commander';
import { cliLog } from './context.js';
import { buildProgram, version } from './program.js';

const bin = fileURLToPath(new URL('../bin/bus.js', import.meta.url));

/** One JSON object on stdout, as docs/cli.md promises. */
interface JsonOut {
  command: string;
  ok: boolean;
  exitCode: number;
  result?: unknown;
  error?: { code: string; failureClass: string; message: string };
}

describe('the bus command', () => {
  let nats: TestNats;
  let bus: Bus;
  let prefix: string;

  /** Runs `bus …` through the bin npm links, against this suite's server and prefix. */
  async function bus_(args: string[], env: Record<string, string> = {}) {
    const p = startProcess({ command: process.execPath, args: [bin, ...args], env: { NATS_URL: nats.url, BUS_PREFIX: prefix, LOG_LEVEL: 'error', ...env } });
    const exit = await p.exited;
    return { code: exit.code, output: p.output() };
  }
  /** The same with --json: the exit code and the parsed object (stdout only). */
  async function json(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; out: JsonOut; stderr: string }> {
    const { spawn } = await import('node:child_process');
    const child = spawn(process.execPath, [bin, ...args, '--json'], { env: { ...process.env, NATS_URL: nats.url, BUS_PREFIX: prefix, LOG_LEVEL: 'error', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d; });
    child.stderr.on('data', (d: Buffer) => { stderr += d; });
    const code = await new Promise<number | null>((res) => child.once('close', (c) => res(c)));
    assert.equal(stdout.trim().split('\n').length, 1, `one line of JSON on stdout, got:\n${stdout}\nstderr:\n${stderr}`);
    return { code, out: JSON.parse(stdout) as JsonOut, stderr };
  }
  async function deadLetter(n: number, connector: string): Promise<void> {
    const entry: DeadLetter = { id: `dl-${n}`, stage: 'deliver', connector, failureClass: 'business', code: 'DELIVER_REJECTED', reason: `rejected ${n}`,
      attempts: 1, history: [], deadLetteredAt: new Date().toISOString(), correlationId: `corr-${n}`, replays: 0,
      original: { stream: bus.names.streams.deliveries, seq: n, subject: `${prefix}.deliveries.${connector}.contact`, headers: {}, data: new Uint8Array([1]) } };
    await bus.publish(bus.names.subjects.dlq('deliver', connector), encodeDeadLetter(entry), { msgId: `dl-${prefix}-${n}` });
  }
  const dlqCount = async () => (await bus.jsm.streams.info(bus.names.streams.dlq)).state.messages;

  before(async () => {
    nats = await startNats();
    prefix = uniquePrefix();
    bus = await connectBus({ config: loadBusConfig({ NATS_URL: nats.url, BUS_PREFIX: prefix }), name: 'cli-test', log: cliLog });
    await bus.applyTopology();
  });
  after(async () => {
    await bus?.close();
    await nats?.stop({ removeStore: true });
  });

  it('--version prints the package version through the bin npm links', async () => {
    const r = await bus_(['--version']);
    assert.equal(r.code, 0);
    assert.equal(r.output.trim(), version);
  });

  it('the bin says how to build when dist/ is missing, and exits 1', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bus-bin-'));
    try {
      mkdirSync(join(dir, 'bin'));
      copyFileSync(bin, join(dir, 'bin', 'bus.js'));
      writePackageJson(dir);
      const p = startProcess({ command: process.execPath, args: [join(dir, 'bin', 'bus.js'), '--version'] });
      const exit = await p.exited;
      assert.equal(exit.code, 1);
      assert.match(p.output(), /not built yet.*npm run build/s);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('every command but up takes --json', async () => {
    const leaves: string[] = [];
    const walk = (c: Command, path: string[]) => {
      if (c.commands.length === 0) {
        if (c.name() !== 'up' && !c.options.some((o) => o.long === '--json')) leaves.push(path.join(' '));
        return;
      }
      for (const sub of c.commands) walk(sub, [...path, sub.name()]);
    };
    walk(await buildProgram(), []);
    assert.deepEqual(leaves, []);
  });

  it('streams status --json is one JSON object: command, result, ok, exitCode 0', async () => {
    const { code, out } = await json(['streams', 'status']);
    assert.equal(code, 0);
    assert.equal(out.command, 'streams status');
    assert.equal(out.ok, true);
    assert.equal(out.exitCode, 0);
    const result = out.result as { streams: { stream: string }[]; ordering: string };
    assert.deepEqual(result.streams.map((s) => s.stream), Object.values(bus.names.streams));
    assert.match(result.ordering, /per-entity leases/);
  });

  it('NATS unreachable → exit 3, with the error in the JSON object', async () => {
    const port = await freePort();
    const { code, out } = await json(['connectors', 'list'], { NATS_URL: `nats://127.0.0.1:${port}` });
    assert.equal(code, 3);
    assert.deepEqual([out.ok, out.exitCode, out.error?.code], [false, 3, 'CLI_NO_NATS']);
  });

  it('connectors pause refuses an unknown name (exit 1, nothing written) and pauses a known one', async () => {
    const kv = await bus.kv(bus.names.kv.connectors);
    const refused = await json(['connectors', 'pause', 'crmm']);
    assert.equal(refused.code, 1);
    assert.equal(refused.out.error?.code, 'CLI_UNKNOWN_CONNECTOR');
    assert.match(refused.out.error?.message ?? '', /known: .*crm/);
    assert.equal(await kv.get('crmm'), null);
    const paused = await json(['connectors', 'pause', 'crm', '--reason', 'maintenance']);
    assert.equal(paused.code, 0);
    assert.deepEqual(paused.out.result, { connector: 'crm', paused: true, reason: 'maintenance' });
    assert.equal((await kv.get('crm'))?.json<{ paused: boolean }>().paused, true);
    assert.equal((await bus_(['connectors', 'resume', 'crm'])).code, 0);
    assert.equal((await kv.get('crm'))?.json<{ paused: boolean }>().paused, false);
  });

  it('dlq discard: --dry-run deletes nothing, no --yes without a terminal is refused, --yes discards exactly the matches', async () => {
    for (const n of [1, 2]) await deadLetter(n, 'crm');
    await deadLetter(3, 'warehouse');
    await waitFor(async () => (await dlqCount()) === 3, { what: 'three dead letters' });

    const dry = await json(['dlq', 'discard', '--connector', 'crm', '--dry-run']);
    assert.equal(dry.code, 0);
    const r = dry.out.result as { dryRun: boolean; discarded: number; entries: { connector: string }[] };
    assert.deepEqual([r.dryRun, r.discarded, r.entries.map((e) => e.connector)], [true, 0, ['crm', 'crm']]);
    assert.equal(await dlqCount(), 3);

    const unconfirmed = await bus_(['dlq', 'discard', '--connector', 'crm']);
    assert.equal(unconfirmed.code, 1);
    assert.match(unconfirmed.output, /2 entries match; nothing was deleted\. Add --yes/);
    assert.equal(await dlqCount(), 3);

    const done = await json(['dlq', 'discard', '--connector', 'crm', '--yes']);
    assert.equal(done.code, 0);
    assert.equal((done.out.result as { discarded: number }).discarded, 2);
    assert.equal(await dlqCount(), 1);

    const list = await json(['dlq', 'list', '--connector', 'warehouse']);
    assert.deepEqual((list.out.result as { seq: number; connector: string }[]).map((e) => e.connector), ['warehouse']);
    assert.equal((await json(['dlq', 'discard', '--connector', 'warehouse', '--yes'])).code, 0);
  });

  it('dlq replay with replays still failing → exit 2 (an ingest entry with no ingest running)', async () => {
    const entry: DeadLetter = { id: 'q1', stage: 'ingest', connector: 'standard', failureClass: 'business', code: 'INGEST_INVALID', reason: 'bad email',
      attempts: 1, history: [], deadLetteredAt: new Date().toISOString(), replays: 0,
      original: { stream: 'webhook', seq: 0, subject: 'webhook', headers: {}, data: new Uint8Array([1]) } };
    await bus.publish(bus.names.subjects.dlq('ingest', 'standard'), encodeDeadLetter(entry), { msgId: `q1-${prefix}` });
    const { code, out } = await json(['dlq', 'replay', '--stage', 'ingest']);
    assert.equal(code, 2);
    assert.deepEqual([out.ok, out.exitCode], [true, 2]);
    assert.deepEqual((out.result as { ok: boolean }[]).map((r) => r.ok), [false]);
    await json(['dlq', 'discard', '--stage', 'ingest', '--yes']);
  });

  it('a dry-run reconcile that finds differences exits 2; one that finds none exits 0', async () => {
    // stands in for the reconcile service: answers the run request and writes the finished report
    const store = reportStore(bus);
    let differing = true;
    const sub = bus.nc.subscribe(bus.names.subjects.reconcileRun, { callback: (_e, m) => {
      const req = m.json<{ connector: string; dryRun: boolean }>();
      const runId = `r${Date.now()}`;
      const counts = { missing: differing ? 2 : 0 } as unknown as RunReport['counts'];
      const run: RunReport = { runId, connector: req.connector, dryRun: req.dryRun, status: 'done', startedAt: new Date().toISOString(), endedAt: new Date().toISOString(),
        holder: 'test', resumed: 0, checked: 5, listed: 5, counts, repaired: 0, flagged: 0, items: 0 };
      void store.saveRun(run, true).then(() => m.respond(JSON.stringify({ runId, resumed: false })));
    } });
    try {
      const found = await json(['reconcile', 'run', '--connector', 'crm', '--dry-run']);
      assert.equal(found.code, 2);
      assert.equal((found.out.result as RunReport).counts.missing, 2);
      differing = false;
      assert.equal((await json(['reconcile', 'run', '--connector', 'crm', '--dry-run'])).code, 0);
    } finally {
      sub.unsubscribe();
    }
  });

  it('Ctrl-C → exit 130, and the JSON object says so', async () => {
    // a reconcile run that never ends: the command waits on it until interrupted
    const sub = bus.nc.subscribe(bus.names.subjects.reconcileRun, { callback: (_e, m) => {
      m.respond(JSON.stringify({ runId: 'never', resumed: false }));
    } });
    try {
      const { spawn } = await import('node:child_process');
      const child = spawn(process.execPath, [bin, 'reconcile', 'run', '--connector', 'crm', '--json'], { env: { ...process.env, NATS_URL: nats.url, BUS_PREFIX: prefix }, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => { stdout += d; });
      child.stderr.on('data', (d: Buffer) => { stderr += d; });
      await waitFor(() => /started run never/.test(stderr), { what: 'the run started (on stderr in --json mode)' });
      child.kill('SIGINT');
      const code = await new Promise<number | null>((res) => child.once('close', (c) => res(c)));
      assert.equal(code, 130);
      assert.deepEqual(JSON.parse(stdout), { command: 'reconcile run', result: { runId: 'never', resumed: false, connector: 'crm', dryRun: false },
        ok: false, exitCode: 130, error: { code: 'CLI_INTERRUPTED', failureClass: 'transient', message: '[CLI_INTERRUPTED] interrupted (Ctrl-C)' } });
    } finally {
      sub.unsubscribe();
    }
  });
  it('streams apply --wait N: a server without JetStream is tried for N seconds, then CLI_NO_NATS and exit 3 (the process exits)', async () => {
    const plain = await startNats({ jetstream: false });
    try {
      const started = Date.now();
      const { code, out } = await json(['streams', 'apply', '--wait', '2'], { NATS_URL: plain.url });
      assert.equal(code, 3);
      assert.equal(out.error?.code, 'CLI_NO_NATS');
      assert.match(out.error?.message ?? '', /jetstream/i);
      assert.ok(Date.now() - started >= 2_000, 'it kept trying');
      const ok = await json(['streams', 'apply', '--wait', '5']);
      assert.equal(ok.code, 0, 'with JetStream answering it applies at once');
    } finally {
      await plain.stop({ removeStore: true });
    }
  });
});

function writePackageJson(dir: string): void {
  // the copied bin is an ES module only when a package.json says so, as @bus/cli's does
  copyFileSync(fileURLToPath(new URL('../package.json', import.meta.url)), join(dir, 'package.json'));
}
