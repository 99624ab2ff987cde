// Ingest requests/s and p99 under load (fixed duration): 1 KiB signed webhooks, 50 connections, beside a
// bare handler and a PubAck-only handler measured in the same run.
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { Webhook } from 'standardwebhooks';
import { forkTracked, stopChild } from './children.js';
import { procStats } from './proc.js';
import { fmt } from './stats.js';

const SECRET = `whsec_${Buffer.from('bench-secret-bench-secret-bench!').toString('base64')}`;

interface Result {
  variant: string; rps: number; p50: number; p99: number; non2xx: number;
  /** CPU µs per answered request: the handler's process and nats-server's (robust to other load on the machine, unlike req/s) */
  cpuUs?: number; natsCpuUs?: number;
}

function signedRequests(count: number, tag: string) {
  const wh = new Webhook(SECRET);
  const pad = 'x'.repeat(880); // ~1 KiB bodies
  return Array.from({ length: count }, (_, i) => {
    const id = `msg_${tag}_${i}`;
    const body = JSON.stringify({ type: 'contact.updated', data: { id: `c${i % 5000}`, version: i + 1, note: pad } });
    const at = new Date();
    return { method: 'POST' as const, path: '/webhooks/standard', body, headers: {
      'content-type': 'application/json', 'webhook-id': id, 'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
      'webhook-signature': wh.sign(id, at, body),
    } };
  });
}

/** BENCH_INGEST_PROFILE_DIR: each handler's process writes a V8 CPU profile there (node --cpu-prof). */
const profileDir = process.env.BENCH_INGEST_PROFILE_DIR;
const WARMUP_REQUESTS = 3_000;

async function measure(variant: string, natsUrl: string, natsPid: number | undefined, prefix: string, durationSec: number): Promise<Result> {
  const child = forkTracked(fileURLToPath(new URL('./ingest-server.js', import.meta.url)), [], {
    env: { ...process.env, NATS_URL: natsUrl, BUS_PREFIX: prefix, VARIANT: variant, STANDARD_WEBHOOK_SECRET: SECRET, LOG_LEVEL: 'silent' },
    stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
    ...(profileDir ? { execArgv: [...process.execArgv, '--cpu-prof', `--cpu-prof-dir=${profileDir}`, `--cpu-prof-name=ingest-${variant}.cpuprofile`] } : {}),
  });
  try {
    const port = await new Promise<number>((resolve, reject) => {
      child.stdout!.on('data', (d: Buffer) => {
        const m = /listening (\d+)/.exec(d.toString());
        if (m) resolve(Number(m[1]));
      });
      child.once('exit', (code) => reject(new Error(`${variant} server exited with ${code}`)));
    });
    // more distinct deliveries than the warm-up and the run can send, so none is a duplicate
    const requests = signedRequests(60_000, `${variant}${Date.now()}`);
    let next = 0;
    const load = { url: `http://127.0.0.1:${port}`, connections: 50, requests: [{ setupRequest: (req: object) => ({ ...req, ...requests[next++ % requests.length] }) }] };
    // unmeasured warm-up: the JIT's first seconds would otherwise count in the CPU per request
    await autocannon({ ...load, amount: WARMUP_REQUESTS });
    const before = { own: procStats(child.pid), nats: procStats(natsPid) };
    const result = await autocannon({ ...load, duration: durationSec });
    const after = { own: procStats(child.pid), nats: procStats(natsPid) };
    const perRequest = (a?: { cpuMs: number }, b?: { cpuMs: number }) => (a && b && result.requests.total ? ((b.cpuMs - a.cpuMs) * 1000) / result.requests.total : undefined);
    return { variant, rps: result.requests.total / result.duration, p50: result.latency.p50, p99: result.latency.p99, non2xx: result.non2xx,
      cpuUs: perRequest(before.own, after.own), natsCpuUs: perRequest(before.nats, after.nats) };
  } finally {
    await stopChild(child);
  }
}

export async function ingestBench(natsUrl: string, natsPid: number | undefined, durationSec: number): Promise<void> {
  // BENCH_INGEST_VARIANTS=puback,ingest: only those handlers (a quicker before/after)
  const variants = (process.env.BENCH_INGEST_VARIANTS ?? 'bare,puback,ingest').split(',').map((v) => v.trim());
  const results: Result[] = [];
  for (const variant of variants) results.push(await measure(variant, natsUrl, natsPid, `i${variant}${Date.now().toString(36)}`, durationSec));
  const [bare, puback, ingest] = ['bare', 'puback', 'ingest'].map((v) => results.find((r) => r.variant === v));
  console.log('\n## ingest: signed 1 KiB webhooks, 50 connections (autocannon)\n');
  const us = (v?: number) => (v === undefined ? '–' : fmt(v));
  console.log('| handler | req/s | p50 ms | p99 ms | non-2xx | handler CPU µs/req | nats-server CPU µs/req |');
  console.log('|---|---:|---:|---:|---:|---:|---:|');
  for (const r of results) console.log(`| ${r.variant} | ${fmt(r.rps)} | ${fmt(r.p50, 1)} | ${fmt(r.p99, 1)} | ${r.non2xx} | ${us(r.cpuUs)} | ${us(r.natsCpuUs)} |`);
  console.log('');
  if (puback && bare) console.log(`PubAck-only / bare: ${fmt((puback.rps / bare.rps) * 100)} % (store-before-2xx ceiling; expected: about a quarter)`);
  if (ingest && puback) console.log(`ingest / PubAck-only: ${fmt((ingest.rps / puback.rps) * 100)} % (aim ≥ 80 %), ingest p99 ${fmt(ingest.p99, 1)} ms (aim < 15 ms)`);
}
