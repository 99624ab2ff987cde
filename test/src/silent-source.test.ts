// A webhook that stops firing: a source expected every 2 s, silent for 6 s, through a real reconcile process and the CLI.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { type AuditRecord, auditRecordsOf, type Bus } from '@bus/bus';
import { createEnvelope } from '@bus/envelope';
import { freePort, startNats, startProcess, type TestNats, type TestProcess, uniquePrefix, waitFor } from '@bus/testkit';
import { overview } from '@bus/operations';
import { testBus } from './support.js';

const reconcileMain = fileURLToPath(new URL('../../services/reconcile/dist/main.js', import.meta.url));
const cliMain = fileURLToPath(new URL('../../libs/cli/dist/main.js', import.meta.url));
const catalog = fileURLToPath(new URL('./fixtures/rhythm-catalog.js', import.meta.url));

describe('silent sources: expectEverySec 2, then 6 s of silence, then an event', () => {
  let nats: TestNats;
  let bus: Bus;
  let prefix: string;
  let reconcile: TestProcess;
  let port: number;
  let listServer: Server;
  const listCalls: number[] = [];
  before(async () => {
    for (const f of [reconcileMain, cliMain]) assert.ok(existsSync(f), `${f} is not built: run npm run build`);
    nats = await startNats();
    prefix = uniquePrefix();
    bus = await testBus(nats.url, prefix);
    listServer = createServer((_req, res) => {
      listCalls.push(Date.now());
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
    await new Promise<void>((r) => listServer.listen(0, '127.0.0.1', r));
    port = await freePort();
  });
  after(async () => {
    reconcile?.kill('SIGKILL');
    await new Promise((r) => listServer.close(r));
    await bus.close();
    await nats.stop({ removeStore: true });
  });

  let n = 0;
  const beat = () => bus.publishEnvelope(bus.names.subjects.event('beat', 'beat.sent'),
    createEnvelope({ type: 'beat.sent', entity: { type: 'beat', id: String(++n) }, version: 1, data: { n } }, { source: 'beat', id: `beat-${n}` }));
  const metric = async (name: string) => {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const v = new RegExp(`^${name}\\{source="beat"[^}]*\\} ([0-9.e+-]+)$`, 'm').exec(text)?.[1];
    return v === undefined ? undefined : Number(v);
  };
  const cli = (args: string[]) => new Promise<{ code: number; out: string }>((resolve) => {
    execFile(process.execPath, [cliMain, ...args], { env: { ...process.env, NATS_URL: nats.url, BUS_PREFIX: prefix } },
      (err, stdout, stderr) => resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, out: `${stdout}${stderr}` }));
  });
  const audits = async (outcome: string): Promise<AuditRecord[]> => {
    const out: AuditRecord[] = [];
    for await (const r of auditRecordsOf(bus, 'intake', outcome)) if (r.source === 'beat') out.push(r);
    return out;
  };

  it('goes quiet: the metric, an audit record, bus streams status, and its listing polled at once; the next event clears it', async (t) => {
    reconcile = startProcess({ command: process.execPath, args: [reconcileMain], env: {
      NATS_URL: nats.url, BUS_PREFIX: prefix, BUS_CATALOG: catalog, RECONCILE_OPS_PORT: String(port), RECONCILE_EVERY_SEC: '0',
      BEATSINK_URL: 'http://127.0.0.1:9', BEAT_LIST_URL: `http://127.0.0.1:${(listServer.address() as AddressInfo).port}`, LOG_LEVEL: 'info',
    } });
    await reconcile.waitForOutput(/reconcile started/, 'reconcile started', 30_000);
    await waitFor(async () => (await metric('bus_source_silent')) !== undefined, { what: 'the source watched', timeoutMs: 10_000, intervalMs: 100 });
    const lastBeat = Date.now();
    await beat();
    await waitFor(async () => (await metric('bus_source_silent')) === 0 && ((await metric('bus_source_quiet_seconds')) ?? 99) < 2, { what: 'the source sending and not quiet', timeoutMs: 10_000, intervalMs: 100 });
    const pollsBefore = listCalls.length; // the watcher may have seen the source quiet before its first beat (measured from its start)
    assert.equal(await metric('bus_source_expected_every_seconds'), 2);
    assert.equal(listCalls.length, pollsBefore, 'not polled while it sends');
    // quiet after twice the expected interval (4 s), not before
    await waitFor(async () => (await metric('bus_source_silent')) === 1, { what: 'the source to go quiet', timeoutMs: 15_000, intervalMs: 100 });
    const quietAfterMs = Date.now() - lastBeat;
    assert.ok(quietAfterMs >= 4_000, `quiet only after 2 × 2 s (after ${quietAfterMs} ms)`);
    await waitFor(() => listCalls.length > pollsBefore, { what: 'its listing polled when it went quiet', timeoutMs: 10_000, intervalMs: 100 });
    t.diagnostic(`quiet seen ${quietAfterMs} ms after the last event (threshold 4 000); listing polled ${listCalls.at(-1)! - lastBeat} ms after it`);
    // silent for 6 s: the metric and bus streams status say so
    await waitFor(async () => ((await metric('bus_source_quiet_seconds')) ?? 0) >= 6, { what: '6 s of silence', timeoutMs: 15_000, intervalMs: 200 });
    const status = await cli(['streams', 'status']);
    assert.equal(status.code, 0, status.out);
    assert.match(status.out, /beat\s+2 s \(declared\)\s+\d+s ago\s+QUIET/, status.out);
    const json = await cli(['streams', 'status', '--json']);
    const src = (JSON.parse(json.out) as { result: { sources: { source: string; quiet: boolean; silentSec: number }[] } }).result.sources.find((s) => s.source === 'beat');
    assert.equal(src?.quiet, true);
    assert.ok((src?.silentSec ?? 0) >= 6);
    // the console's overview reads the same (its page renders o.sources)
    const o = await overview(bus);
    assert.deepEqual(o.sources.filter((s) => s.source === 'beat').map((s) => s.quiet), [true]);
    const quiet = await waitFor(async () => (await audits('source-quiet')).find((r) => Date.parse(r.at) >= lastBeat), { what: 'the source-quiet audit record', timeoutMs: 5_000 });
    assert.match(quiet.reason ?? '', /source beat sent nothing for \d+ s; it is expected every 2 s \(declared\)/);
    // the next event clears it; the source keeps its rhythm from then on (a CLI run can take longer than 2 × 2 s on a busy machine)
    await beat();
    const beating = setInterval(() => void beat(), 1_000);
    after(() => clearInterval(beating));
    const beatAgain = Date.now();
    await waitFor(async () => (await metric('bus_source_silent')) === 0, { what: 'the next event to clear it', timeoutMs: 10_000, intervalMs: 100 });
    t.diagnostic(`cleared ${Date.now() - beatAgain} ms after the next event`);
    const cleared = await cli(['streams', 'status']);
    assert.match(cleared.out, /beat\s+2 s \(declared\)\s+\d+m?s ago\s+ok/, cleared.out); // under a second: "850ms ago"
    const back = await waitFor(async () => (await audits('source-back')).find((r) => Date.parse(r.at) >= lastBeat + 4_000), { what: 'the source-back audit record', timeoutMs: 5_000 });
    assert.match(back.reason ?? '', /sent again after \d+ s quiet/);
    clearInterval(beating);
    const quietAfterBeat = (await audits('source-quiet')).filter((r) => Date.parse(r.at) >= lastBeat);
    assert.equal(quietAfterBeat.length, 1, 'one quiet record for one silence');
  });
});
