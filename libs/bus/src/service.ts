import { createLogger, createMetrics, type BusMetrics, type Logger, Readiness, startOpsServer } from '@bus/observability';
import type { z } from 'zod';
import { BusEnv, type BusConfig, parseEnv } from './config.js';
import { type Bus, connectBus } from './connect.js';
import { watchDlq } from './dlq-stats.js';
import { watchJetStream } from './jetstream-health.js';
import { onShutdown } from './shutdown.js';

/** What a service's start function gets: everything wired, the topology applied. */
export interface ServiceContext<C> {
  config: Readonly<C & BusConfig>;
  log: Logger;
  metrics: BusMetrics;
  readiness: Readiness;
  bus: Bus;
}

/** What a started service hands back: where it can be reached, and how it stops. */
export interface Started {
  endpoints: Record<string, string>;
  stop(): Promise<void>;
}

export interface ServiceOptions<S extends z.ZodType> {
  name: string;
  /** The service's own settings; BusEnv is added to them. */
  env: S;
  /** Where /healthz, /readyz and /metrics listen; omit when the service serves them itself (ingest). */
  ops?: (config: z.infer<S>) => { port: number; host: string };
  /** The stream whose availability is the `jetstream` readiness check. */
  stream: (bus: Bus) => string;
  start(ctx: ServiceContext<z.infer<S>>): Promise<Started>;
}

/**
 * The life of every bus service, in one place: configuration (every problem listed, then
 * exit 1), logger, metrics, readiness and ops endpoints, NATS, topology, JetStream watch,
 * DLQ metrics, the service's own start, the launcher's ready message, and a drain on SIGTERM.
 */
export function runService<S extends z.ZodType>(o: ServiceOptions<S>): void {
  const log = createLogger({ service: o.name });
  (async () => {
    const config = parseEnv((o.env as z.ZodType).and(BusEnv)) as Readonly<z.infer<S> & BusConfig>;
    const metrics = createMetrics(o.name);
    const readiness = new Readiness();
    const opsAt = o.ops?.(config as z.infer<S>);
    const ops = opsAt ? await startOpsServer({ ...opsAt, registry: metrics.registry, readiness }) : undefined;
    const bus = await connectBus({ config, name: o.name, log, metrics, readiness });
    await bus.applyTopology();
    const stopWatch = watchJetStream(bus.jsm, o.stream(bus), readiness, log);
    // DLQ size and oldest age per stage and connector, on every service's /metrics
    const dlq = config.BUS_DLQ_STATS_INTERVAL_MS > 0
      ? watchDlq({ jsm: bus.jsm, names: bus.names, metrics, log, intervalMs: config.BUS_DLQ_STATS_INTERVAL_MS })
      : undefined;
    const started = await o.start({ config: config as ServiceContext<z.infer<S>>["config"], log, metrics, readiness, bus });
    const endpoints = { ...started.endpoints, ...(ops ? { health: `${ops.url}/readyz` } : {}) };
    log.info({ endpoints }, `${o.name} started`);
    process.send?.({ type: 'ready', service: o.name, endpoints });
    onShutdown(log, async () => {
      stopWatch();
      dlq?.stop();
      await started.stop();
      await bus.close();
      await ops?.close();
    });
  })().catch((err: Error) => {
    log.fatal({ code: (err as { code?: string }).code }, err.message);
    process.exit(1);
  });
}
