import { BusError } from '@bus/errors';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEMO_TOKEN_KEY } from '@bus/auth';
import { parseEnv } from '@bus/bus';
import { findNatsServer, spawnNatsServer, type NatsServerProcess } from '@bus/nats-server';
import type { Command } from 'commander';
import { z } from 'zod';
import { configuredTopology, withBus } from './context.js';
import { supervise } from './supervise.js';

export type { ReadyMessage } from './supervise.js';

const UpEnv = z.object({
  NATS_URL: z.string().optional(),
  BUS_NATS_PORT: z.coerce.number().int().min(-1).max(65_535).default(-1),
  BUS_DATA_DIR: z.string().default('.data'),
  /** Only these services (comma-separated names), e.g. `ingest,transform`; default every built one. */
  BUS_UP_SERVICES: z.string().optional(),
  /** Failed starts in a row after which a service is given up (its error shown). */
  BUS_UP_MAX_FAILED_STARTS: z.coerce.number().int().min(1).max(100).default(4),
  /** Delay before restarting a service that exited; doubled per failed start in a row (at most 30 s). */
  BUS_UP_BACKOFF_MS: z.coerce.number().int().min(0).max(60_000).default(1_000),
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
  // the demo stripe source polls and refetches the sandbox's fake Stripe (customers, events); with a real
  // STRIPE_API_KEY set and STRIPE_API_BASE unset, the real Stripe is used (the pair is defaulted together only)
  STRIPE_API_BASE: 'http://127.0.0.1:8090/stripe',
  STRIPE_API_KEY: 'sk_test_demo_sandbox',
  // seals OAuth2 tokens in bus_tokens; services refuse to run without a key of their own under NODE_ENV=production
  BUS_TOKEN_KEY: DEMO_TOKEN_KEY,
  // the console's operator token (name:token): sign in with demo-console-token
  CONSOLE_TOKENS: 'operator:demo-console-token',
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
    if (!bin) throw new BusError('NATS_SERVER_NOT_FOUND', 'permanent', 'nats-server is not installed: run `apt-get install -y nats-server` (or set NATS_URL to a running server)');
    const storeDir = resolve(env.BUS_DATA_DIR, 'nats');
    await mkdir(storeDir, { recursive: true });
    // its own process group: Ctrl-C must not stop it before the services have drained through it
    nats = await spawnNatsServer({ bin, port: env.BUS_NATS_PORT, storeDir, name: 'bus-embedded', detached: true });
    natsUrl = nats.url;
    // lets `npm run bus -- …` in another terminal find this server without NATS_URL
    await writeFile(resolve(env.BUS_DATA_DIR, 'nats.url'), natsUrl);
    console.log(`✔ ${'nats'.padEnd(10)} ${natsUrl} (embedded, data in ${storeDir})`);
  }
  process.env.NATS_URL = natsUrl;
  const demo = Object.entries(DEMO_ENV).filter(([k]) => !process.env[k] && !(k === 'STRIPE_API_BASE' && process.env.STRIPE_API_KEY));
  for (const [k, v] of demo) process.env[k] = v;
  if (demo.length) console.log(`! demo secrets in use (set these to use your own): ${demo.map(([k, v]) => `${k}=${v}`).join(' ')}`);
  const report = await withBus((bus) => bus.applyTopology(configuredTopology()));
  console.log(`✔ ${'topology'.padEnd(10)} ${report.created.length} created, ${report.updated.length} updated, ${report.unchanged.length} unchanged, ${report.drift.length} drift`);

  const only = env.BUS_UP_SERVICES?.split(',').map((n) => n.trim()).filter(Boolean);
  const services = discoverServices().filter((s) => !only || only.includes(s.name));
  const supervisor = supervise(services, { env: { ...process.env, NATS_URL: natsUrl }, maxFailedStarts: env.BUS_UP_MAX_FAILED_STARTS, backoffMs: env.BUS_UP_BACKOFF_MS });
  if (services.length === 0) console.log('  (no services built yet)');
  console.log(`\nThe bus is up. Try: npx bus streams status  Ctrl-C stops everything.`);

  // services run in process groups of their own: a Ctrl-C reaches only this process, which
  // sends each service one SIGTERM, so each drains exactly once
  await new Promise<void>((resolveSignal) => {
    process.once('SIGINT', () => resolveSignal());
    process.once('SIGTERM', () => resolveSignal());
  });
  process.on('SIGINT', () => {
    console.log('second Ctrl-C: services exit now, without finishing their work in flight (it is redelivered)');
    supervisor.hurry();
  });
  console.log('\nstopping services (each drains its work in flight)…');
  await supervisor.stop();
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
