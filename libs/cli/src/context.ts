import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { type Bus, connectBus, loadBusConfig } from '@bus/bus';
import { BusError } from '@bus/errors';
import { createLogger } from '@bus/observability';
import { topology } from '@bus/streams';

/** CLI diagnostics go to stderr so stdout stays parseable (`--json`). */
export const cliLog = createLogger({ service: 'cli', level: process.env.LOG_LEVEL ?? 'warn', destination: process.stderr as never });

/**
 * Runs `fn` with a connected bus and closes it afterwards. A CLI must not wait forever
 * for NATS: it fails fast with the URL it tried and what to check.
 */
export async function withBus<T>(fn: (bus: Bus) => Promise<T>): Promise<T> {
  const config = loadBusConfig({ ...process.env, NATS_URL: natsUrl() });
  const connecting = connectBus({ config, name: 'bus-cli', log: cliLog, waitOnFirstConnect: false });
  const bus = await connecting.catch((cause: Error) => {
    throw new BusError('CLI_NO_NATS', 'transient',
      `cannot reach NATS at ${config.NATS_URL} (${cause.message}). Is the bus running (npm start)? Set NATS_URL to its server.`, { cause });
  });
  try {
    return await fn(bus);
  } finally {
    await bus.close();
  }
}

/** NATS_URL, else the server `npm start` runs (it writes .data/nats.url), else the default. */
export function natsUrl(): string | undefined {
  if (process.env.NATS_URL) return process.env.NATS_URL;
  const file = resolve(process.env.BUS_DATA_DIR ?? '.data', 'nats.url');
  return existsSync(file) ? readFileSync(file, 'utf8').trim() : undefined;
}

/** The topology this configuration describes. */
export function configuredTopology() {
  const config = loadBusConfig();
  return topology({ prefix: config.BUS_PREFIX, replicas: config.BUS_REPLICAS });
}

/** Prints rows as an aligned table. */
export function printTable(rows: Record<string, string | number>[], out: NodeJS.WritableStream = process.stdout): void {
  if (rows.length === 0) return;
  const cols = Object.keys(rows[0]!);
  const width = cols.map((c) => Math.max(c.length, ...rows.map((r) => String(r[c] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(width[i]!)).join('  ').trimEnd();
  out.write(`${line(cols)}\n`);
  for (const r of rows) out.write(`${line(cols.map((c) => String(r[c] ?? '')))}\n`);
}

// the CLI and the console format ages and sizes alike (@bus/operations)
export { formatAge, formatBytes } from '@bus/operations';
