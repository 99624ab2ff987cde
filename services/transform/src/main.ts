// transform: wiring only — config → logger → bus → one consumer per connector.
import { BusEnv, connectBus, onShutdown, parseEnv, watchJetStream } from '@bus/bus';
import { demoConnectors, demoSchemas } from '@bus/catalog';
import { createLogger, createMetrics, Readiness, startOpsServer } from '@bus/observability';
import { createTransformer, createTransformMetrics } from '@bus/transformer';
import { z } from 'zod';

const Env = z.object({
  TRANSFORM_OPS_PORT: z.coerce.number().int().min(0).max(65_535).default(8081),
  TRANSFORM_OPS_HOST: z.string().default('127.0.0.1'),
  TRANSFORM_CONCURRENCY: z.coerce.number().int().min(1).max(1024).default(32),
}).and(BusEnv);

const log = createLogger({ service: 'transform' });

async function main() {
  const config = parseEnv(Env);
  const metrics = createMetrics('transform');
  const readiness = new Readiness();
  const ops = await startOpsServer({ port: config.TRANSFORM_OPS_PORT, host: config.TRANSFORM_OPS_HOST, registry: metrics.registry, readiness });
  const bus = await connectBus({ config, name: 'transform', log, metrics, readiness });
  await bus.applyTopology();
  const stopWatch = watchJetStream(bus.jsm, bus.names.streams.events, readiness, log);
  const transformer = createTransformer({ bus, connectors: demoConnectors, schemas: demoSchemas, log, metrics: createTransformMetrics(metrics.registry), concurrency: config.TRANSFORM_CONCURRENCY });
  const running = await transformer.start();
  log.info({ connectors: [...running.keys()], ops: ops.url }, 'transform consuming');
  process.send?.({ type: 'ready', service: 'transform', endpoints: { connectors: [...running.keys()].join(','), health: `${ops.url}/readyz` } });

  onShutdown(log, async () => {
    stopWatch();
    await Promise.all([...running.values()].map((c) => c.stop()));
    await bus.close();
    await ops.close();
  });
}

main().catch((err: Error) => {
  log.fatal({ code: (err as { code?: string }).code }, err.message);
  process.exit(1);
});
