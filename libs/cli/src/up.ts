import { type ChildProcess, fork } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseEnv } from '@bus/bus';
import { findNatsServer, spawnNatsServer, type NatsServerProcess } from '@bus/nats-server';
import type { Command } from 'commander';
import { z } from 'zod';
import { configuredTopology, withBus } from './context.js';

const UpEnv = z.object({
  NATS_URL: z.string().optional(),
  BUS_NATS_PORT: z.coerce.number().int().min(-1).max(65_535).default(-1),
  BUS_DATA_DIR: z.string().default('.data'),
});

/**
 * Secrets the demo services need, used only when the variable is unset, so that
 * `npm start` runs on a fresh machine. They are printed: never use them for real traffic.
 */
export const DEMO_ENV: Record<string, string> = {
  STRIPE_WEBHOOK_SECRET: 'whsec_demo_stripe_secret',
  GITHUB_WEBHOOK_SECRET: 'demo-github-secret',
  STANDARD_WEBHOOK_SECRET: 'whsec_ZGVtby1zdGFuZGFyZC13ZWJob29rcy1zZWNyZXQ=',
  INGEST_API_TOKENS: 'demo-token:shop', // POST /events as source shop only
  CRM_API_KEY: 'demo-crm-key',
  CRM_BASE_URL: 'http://127.0.0.1:8090/crm',
  WAREHOUSE_BASE_URL: 'http://127.0.0.1:8090/warehouse',
  // the demo warehouse wants OAuth2 (client credentials) from the sandbox's token endpoint
  WAREHOUSE_TOKEN_URL: 'http://127.0.0.1:8090/oauth/token',
  WAREHOUSE_CLIENT_ID: 'demo-warehouse-client',
  WAREHOUSE_CLIENT_SECRET: 'demo-warehouse-secret',
};

const root = resolve(fileURLToPath(new URL('../../../', import.meta.url)));

/** A service the launcher runs: every services/<name> whose package.json has `"bus": { "service": true }`. */
export interface ServiceEntry {
  name: string;
  main: string;
}

export function discoverServices(servicesDir = join(root, 'services')): ServiceEntry[] {
  if (!existsSync(servicesDir)) return [];
  return readdirSync(servicesDir)
    .map((name) => ({ name, dir: join(servicesDir, name) }))
    .filter(({ dir }) => existsSync(join(dir, 'package.json')))
    .filter(({ dir }) => JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).bus?.service === true)
    .map(({ name, dir }) => ({ name, main: join(dir, 'dist', 'main.js') }))
    .sort((a, b) => a.name.localeCompare(b.name));
}

/** What a service tells the launcher over IPC once it listens. */
export interface ReadyMessage {
  type: 'ready';
  service: string;
  endpoints: Record<string, string>;
}

function startService(s: ServiceEntry, env: NodeJS.ProcessEnv): ChildProcess {
  if (!existsSync(s.main)) throw new Error(`${s.name} is not built (${s.main} missing): run npm run build`);
  const child = fork(s.main, [], { env, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  child.on('message', (m: ReadyMessage) => {
    if (m?.type !== 'ready') return;
    const endpoints = Object.entries(m.endpoints).map(([what, url]) => `${what} ${url}`).join(' · ');
    console.log(`✔ ${m.service.padEnd(10)} ${endpoints}`);
  });
  return child;
}

function stopChild(child: ChildProcess, timeoutMs = 20_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolveStop) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolveStop();
    });
    child.kill('SIGTERM');
  });
}

/**
 * `npm start`: an embedded nats-server (unless NATS_URL is set), the topology, and every
 * service, until Ctrl-C stops them in reverse order.
 */
export async function up(): Promise<void> {
  const env = parseEnv(UpEnv);
  let nats: NatsServerProcess | undefined;
  let natsUrl = env.NATS_URL;
  if (!natsUrl) {
    const bin = findNatsServer();
    if (!bin) throw new Error('nats-server is not installed: run `apt-get install -y nats-server` (or set NATS_URL to a running server)');
    const storeDir = resolve(env.BUS_DATA_DIR, 'nats');
    await mkdir(storeDir, { recursive: true });
    nats = await spawnNatsServer({ bin, port: env.BUS_NATS_PORT, storeDir, name: 'bus-embedded' });
    natsUrl = nats.url;
    // lets `npm run bus -- …` in another terminal find this server without NATS_URL
    await writeFile(resolve(env.BUS_DATA_DIR, 'nats.url'), natsUrl);
    console.log(`✔ ${'nats'.padEnd(10)} ${natsUrl} (embedded, data in ${storeDir})`);
  }
  process.env.NATS_URL = natsUrl;
  const demo = Object.entries(DEMO_ENV).filter(([k]) => !process.env[k]);
  for (const [k, v] of demo) process.env[k] = v;
  if (demo.length) console.log(`! demo secrets in use (set these to use your own): ${demo.map(([k, v]) => `${k}=${v}`).join(' ')}`);
  const report = await withBus((bus) => bus.applyTopology(configuredTopology()));
  console.log(`✔ ${'topology'.padEnd(10)} ${report.created.length} created, ${report.updated.length} updated, ${report.unchanged.length} unchanged, ${report.drift.length} drift`);

  const children = new Map<string, ChildProcess>();
  let stopping = false;
  const run = (s: ServiceEntry) => {
    const child = startService(s, { ...process.env, NATS_URL: natsUrl });
    children.set(s.name, child);
    child.once('exit', (code, signal) => {
      if (stopping) return;
      console.error(`✘ ${s.name} exited (${signal ?? code}); restarting in 2 s`);
      setTimeout(() => !stopping && run(s), 2_000).unref();
    });
  };
  const services = discoverServices();
  for (const s of services) run(s);
  if (services.length === 0) console.log('  (no services built yet)');
  console.log(`\nThe bus is up. Try: npm run bus -- streams status  Ctrl-C stops everything.`);

  await new Promise<void>((resolveSignal) => {
    process.once('SIGINT', () => resolveSignal());
    process.once('SIGTERM', () => resolveSignal());
  });
  stopping = true;
  console.log('\nstopping services…');
  await Promise.all([...children.values()].map((c) => stopChild(c)));
  if (nats) {
    console.log('stopping nats-server…');
    await nats.stop();
    await rm(resolve(env.BUS_DATA_DIR, 'nats.url'), { force: true });
  }
  console.log('stopped.');
}

export function registerUp(program: Command): void {
  program
    .command('up')
    .description('run the bus: embedded nats-server (unless NATS_URL is set), topology, every service')
    .action(up);
}
