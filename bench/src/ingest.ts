// Ingest requests/s and p99 under load (fixed duration): 1 KiB signed webhooks, 50 connections, beside a
// bare handler and a PubAck-only handler measured in the same run.
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { Webhook } from 'standardwebhooks';
import { forkTracked, stopChild } from './children.js';
import { fmt } from './stats.js';

const SECRET = `whsec_${Buffer.from('bench-secret-bench-secret-bench!').toString('base64')}`;

interface Result { variant: string; rps: number; p50: number; p99: number; non2xx: number }

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

async function measure(variant: string, natsUrl: string, prefix: string, durationSec: number): Promise<Result> {
  const child = forkTracked(fileURLToPath(new URL('./ingest-server.js', import.meta.url)), [], {
    env: { ...process.env, NATS_URL: natsUrl, BUS_PREFIX: prefix, VARIANT: variant, STANDARD_WEBHOOK_SECRET: SECRET, LOG_LEVEL: 'silent' },
    stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
  });
  try {
    const port = await new Promise<number>((resolve, reject) => {
      child.stdout!.on('data', (d: Buffer) => {
        const m = /listening (\d+)/.exec(d.toString());
        if (m) resolve(Number(m[1]));
      });
      child.once('exit', (code) => reject(new Error(`${variant} server exited with ${code}`)));
    });
    // more distinct deliveries than the run can send, so none is a duplicate
    const requests = signedRequests(60_000, `${variant}${Date.now()}`);
    let next = 0;
    const result = await autocannon({
      url: `http://127.0.0.1:${port}`, connections: 50, duration: durationSec,
      requests: [{ setupRequest: (req) => ({ ...req, ...requests[next++ % requests.length] }) }],
    });
    return { variant, rps: result.requests.total / result.duration, p50: result.latency.p50, p99: result.latency.p99, non2xx: result.non2xx };
  } finally {
    await stopChild(child);
  }
}

export async function ingestBench(natsUrl: string, durationSec: number): Promise<void> {
  const results: Result[] = [];
  for (const variant of ['bare', 'puback', 'ingest']) results.push(await measure(variant, natsUrl, `i${variant}${Date.now().toString(36)}`, durationSec));
  const [bare, puback, ingest] = results as [Result, Result, Result];
  console.log('\n## ingest: signed 1 KiB webhooks, 50 connections (autocannon)\n');
  console.log('| handler | req/s | p50 ms | p99 ms | non-2xx |');
  console.log('|---|---:|---:|---:|---:|');
  for (const r of results) console.log(`| ${r.variant} | ${fmt(r.rps)} | ${fmt(r.p50, 1)} | ${fmt(r.p99, 1)} | ${r.non2xx} |`);
  console.log(`\nPubAck-only / bare: ${fmt((puback.rps / bare.rps) * 100)} % (store-before-2xx ceiling; expected: about a quarter)`);
  console.log(`ingest / PubAck-only: ${fmt((ingest.rps / puback.rps) * 100)} % (aim ≥ 80 %), ingest p99 ${fmt(ingest.p99, 1)} ms (aim < 15 ms)`);
}
