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
 * What a process does with an error no code handled, installed before anything else runs:
 *
 * - `unhandledRejection` (a promise nobody awaited failed — a bug, but a local one): logged at
 *   error with the service (the logger's base field, and the message) and the error, counted in `bus_unhandled_rejections_total`, and the
 *   process goes on. Node's default would end it, and with it the live pipeline it hosts (the
 *   reconcile service runs the projector too); work in flight is owned by consumers, which ack or
 *   retry on their own.
 * - `uncaughtException` (a throw unwound the stack: the process's state is unknown): logged at
 *   fatal with the service and the error, then exit 1, so the launcher (`bus up`, systemd, the
 *   orchestrator) starts it again. Unacked messages are redelivered to the next process.
 *
 * Returns a setter for the counter, which exists only once metrics are made (rejections before
 * that are counted then).
 */
function onUnhandled(service: string, log: Logger): (counter: { inc(n?: number): void }) => void {
  let counter: { inc(n?: number): void } | undefined;
  let early = 0;
  process.on('unhandledRejection', (reason) => {
    // plain on purpose: a non-error made loggable (with a stack); what is thrown next is coded
    const err = reason instanceof Error ? reason : new Error(`a promise was rejected with a non-error: ${String(reason)}`);
    log.error({ err, code: (reason as { code?: unknown } | undefined)?.code },
      `${service}: a promise was rejected and nothing handled it; the process goes on. This is a bug: report it with this line`);
    if (counter) counter.inc();
    else early++;
  });
  process.on('uncaughtException', (err, origin) => {
    log.fatal({ err, origin, code: (err as { code?: unknown }).code },
      `${service}: uncaught exception; exiting with code 1 so the launcher starts it again (work in flight is redelivered)`);
    process.exit(1);
  });
  return (c) => {
    counter = c;
    if (early) c.inc(early);
    early = 0;
  };
}

/**
 * The life of every bus service, in one place: process handlers for errors nothing handled
 * (onUnhandled), configuration (every problem listed, then exit 1), logger, metrics, readiness
 * and ops endpoints, NATS, topology, JetStream watch, DLQ metrics, the service's own start, the
 * launcher's ready message, and a drain on SIGTERM.
 */
export function runService<S extends z.ZodType>(o: ServiceOptions<S>): void {
  const log = createLogger({ service: o.name });
  const countRejections = onUnhandled(o.name, log);
  (async () => {
    const config = parseEnv((o.env as z.ZodType).and(BusEnv)) as Readonly<z.infer<S> & BusConfig>;
    const metrics = createMetrics(o.name);
    countRejections(metrics.unhandledRejections);
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
