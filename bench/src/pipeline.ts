// The bus under a bench: its three services as child processes, started the way `bus up`
// starts them, an HTTP target in this process that times each arrival, and a keep-alive
// poster for POST /events. Shared by the end-to-end and soak parts.
import type { ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync } from 'node:fs';
import { createServer, Agent, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Bus, connectBus, loadBusConfig, serviceNodeFlags } from '@bus/bus';
import { createLogger } from '@bus/observability';
import { forkTracked, stopChild, waitForMessage } from './children.js';
import type { Run } from './load.js';

const root = resolve(fileURLToPath(new URL('../../', import.meta.url)));
export const SERVICES = ['ingest', 'transform', 'deliver'] as const;
export type ServiceName = (typeof SERVICES)[number];
export const TOKEN = 'bench-token';
export const SOURCE = 'bench';
// what `bus up` gives the services when unset (libs/cli DEMO_ENV); the URLs point at this process
export const DEMO_SECRETS = {
  STRIPE_WEBHOOK_SECRET: 'whsec_demo_stripe_secret',
  GITHUB_WEBHOOK_SECRET: 'demo-github-secret',
  STANDARD_WEBHOOK_SECRET: 'whsec_ZGVtby1zdGFuZGFyZC13ZWJob29rcy1zZWNyZXQ=',
  CRM_API_KEY: 'demo-crm-key',
};

/** An order with something to ship, sized so its envelope is ~1 KiB of msgpack like the other benches. */
export function orderData(i: number) {
  return {
    contactId: `c-${i % 1000}`, total: 100 + (i % 900), currency: 'EUR',
    items: Array.from({ length: 8 }, (_, k) => ({ sku: `SKU-${k}-${'x'.repeat(78)}`, quantity: 1 + ((i + k) % 5) })),
  };
}
export const orderId = (tag: string, i: number) => `${tag}-${i}`;

/** The POST /events bodies of one phase, built before the clock starts. */
export function eventBodies(tag: string, n: number): Buffer[] {
  return Array.from({ length: n }, (_, i) => Buffer.from(JSON.stringify({ source: SOURCE, events: [
    { type: 'order.created', entity: { type: 'order', id: orderId(tag, i) }, version: 1, data: orderData(i) },
  ] })));
}

export interface Service {
  name: ServiceName;
  child: ChildProcess;
  endpoints: Record<string, string>;
  /** last lines of its output, and how many were warnings or worse */
  tail: string[];
  warnings: number;
  /** how it ended, when it ended before the bench stopped it */
  exited?: string;
}

export async function startService(name: ServiceName, env: NodeJS.ProcessEnv, profileDir?: string): Promise<Service> {
  const main = resolve(root, 'services', name, 'dist', 'main.js');
  if (!existsSync(main)) throw new Error(`${name} is not built (${main} missing): run npm run build`);
  // the heap flags `bus up` gives the service (BUS_SERVICE_NODE_FLAGS), so its memory is the one measured
  const execArgv = [...serviceNodeFlags(name, env), ...(profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`, `--cpu-prof-name=${name}.cpuprofile`] : [])];
  const child = forkTracked(main, [], { env, execArgv, stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
  const s: Service = { name, child, endpoints: {}, tail: [], warnings: 0 };
  child.once('exit', (code, signal) => (s.exited = String(signal ?? code)));
  // BENCH_E2E_LOG_DIR: every line of the service's output kept there too (<name>.log), to read what it did when
  const keep = process.env.BENCH_E2E_LOG_DIR ? createWriteStream(join(process.env.BENCH_E2E_LOG_DIR, `${name}.log`), { flags: 'a' }) : undefined;
  const onData = (chunk: Buffer) => {
    keep?.write(chunk);
    for (const line of chunk.toString().split('\n')) {
      if (!line) continue;
      if (Number(/"level":(\d+)/.exec(line)?.[1] ?? 40) >= 40) s.warnings++;
      s.tail.push(line.length > 400 ? `${line.slice(0, 400)}…` : line);
      if (s.tail.length > 20) s.tail.shift();
    }
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  s.endpoints = await waitForMessage(child, (m) => {
    const r = m as { type?: string; endpoints?: Record<string, string> };
    return r?.type === 'ready' ? (r.endpoints ?? {}) : undefined;
  }, 30_000, name, () => s.tail.join('\n'));
  return s;
}

/** The target: PUT /warehouse/shipments/<order id> is timed; /crm/… is only counted. */
export async function startTarget(onShipment: (id: string, at: number) => void) {
  let crmCalls = 0;
  let otherCalls = 0;
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    req.resume();
    req.on('end', () => {
      const at = performance.now();
      const url = req.url ?? '';
      if (url.startsWith('/warehouse/shipments/')) onShipment(decodeURIComponent(url.slice('/warehouse/shipments/'.length)), at);
      else if (url.startsWith('/crm/')) crmCalls++;
      else otherCalls++;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"ok":true}');
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    calls: () => ({ crm: crmCalls, other: otherCalls }),
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
}

export function poster(eventsUrl: string, maxSockets: number) {
  const u = new URL(eventsUrl);
  const agent = new Agent({ keepAlive: true, maxSockets });
  const post = (body: Buffer) => new Promise<void>((resolvePost, reject) => {
    const req = request({ host: u.hostname, port: u.port, path: u.pathname, method: 'POST', agent,
      headers: { 'content-type': 'application/json', 'content-length': body.length, authorization: `Bearer ${TOKEN}` } }, (res) => {
      res.resume();
      res.once('end', () => (res.statusCode === 200 ? resolvePost() : reject(new Error(`ingest answered ${res.statusCode}`))));
      res.once('error', reject);
    });
    req.setTimeout(30_000, () => req.destroy(new Error('no answer from ingest within 30 s')));
    req.once('error', reject);
    req.end(body);
  });
  return { post, close: () => agent.destroy() };
}


export interface BusPipeline {
  bus: Bus;
  services: Service[];
  /** Phases by tag: an arrival at the warehouse target for order `<tag>-<i>` is message i of run `<tag>`. */
  runs: Map<string, Run>;
  target: Awaited<ReturnType<typeof startTarget>>;
  /** POST /events with the bench token; resolves on 200. */
  post(body: Buffer): Promise<void>;
  /** Waits for the run's arrivals; throws, with its last lines, when a service died (the figures would be meaningless). */
  settle(run: Run, tag: string): Promise<void>;
  /** A service's /metrics address. */
  metricsUrl(name: ServiceName): string | undefined;
  close(): Promise<void>;
}

/**
 * ingest, transform and deliver on their own prefix of the bench's nats-server, the demo
 * catalog, crm paused (its demo plan's 50/s would measure the plan, not the pipeline: its
 * commands are made and wait in DELIVERIES), warehouse delivering to this process.
 */
export async function startBusPipeline(o: { natsUrl: string; prefix: string; logLevel: string; profileDir?: string; maxSockets: number }): Promise<BusPipeline> {
  const runs = new Map<string, Run>();
  const target = await startTarget((id, at) => {
    const dash = id.lastIndexOf('-');
    runs.get(id.slice(0, dash))?.arrive(Number(id.slice(dash + 1)), at);
  });
  const log = createLogger({ service: 'bench', level: 'silent' });
  const bus = await connectBus({ config: loadBusConfig({ NATS_URL: o.natsUrl, BUS_PREFIX: o.prefix }), name: 'bench-pipeline', log });
  const services: Service[] = [];
  let http: ReturnType<typeof poster> | undefined;
  const close = async () => {
    http?.close();
    await Promise.all(services.map((s) => stopChild(s.child)));
    await bus.close();
    await target.close();
  };
  try {
    await bus.applyTopology();
    await (await bus.kv(bus.names.kv.connectors)).put('crm', JSON.stringify({ paused: true, reason: 'bench: crm is rate-limited to 50/s by the demo plan', at: new Date().toISOString(), by: 'bench' }));
    const env: NodeJS.ProcessEnv = {
      ...process.env, ...DEMO_SECRETS, NATS_URL: o.natsUrl, BUS_PREFIX: o.prefix, LOG_LEVEL: o.logLevel, INGEST_API_TOKENS: TOKEN,
      CRM_BASE_URL: `${target.url}/crm`, WAREHOUSE_BASE_URL: `${target.url}/warehouse`,
      INGEST_PORT: '0', TRANSFORM_OPS_PORT: '0', DELIVER_OPS_PORT: '0',
    };
    for (const name of SERVICES) services.push(await startService(name, env, o.profileDir));
    const eventsUrl = services[0]!.endpoints.events;
    if (!eventsUrl) throw new Error(`ingest did not say where POST /events is: ${JSON.stringify(services[0]!.endpoints)}`);
    http = poster(eventsUrl, o.maxSockets);
  } catch (err) {
    await close();
    throw err;
  }
  const h = http;
  return {
    bus, services, runs, target, close,
    post: (body) => h.post(body),
    async settle(run, tag) {
      const dead = () => services.filter((s) => s.exited);
      if (!dead().length) await run.settle();
      if (dead().length) {
        throw new Error(dead().map((s) => `${s.name} exited (${s.exited}) during the ${tag} phase; its last lines:\n${s.tail.slice(-8).join('\n')}`).join('\n'));
      }
    },
    metricsUrl: (name) => services.find((s) => s.name === name)?.endpoints.health?.replace(/\/readyz$/, '/metrics'),
  };
}
