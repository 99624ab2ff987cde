// deliver: wiring only — config → logger → bus → one deliverer per connector.
import { BusEnv, connectBus, onShutdown, parseEnv, watchJetStream } from '@bus/bus';
import { demoConnectors } from '@bus/catalog';
import { createDeliverer, createDeliverMetrics, resolveDelivery } from '@bus/delivery';
import { createLogger, createMetrics, Readiness, startOpsServer } from '@bus/observability';
import { z } from 'zod';

const Env = z.object({
  DELIVER_OPS_PORT: z.coerce.number().int().min(0).max(65_535).default(8082),
  DELIVER_OPS_HOST: z.string().default('127.0.0.1'),
  DELIVER_CONCURRENCY: z.coerce.number().int().min(1).max(1024).default(32),
}).and(BusEnv);

const log = createLogger({ service: 'deliver' });

async function main() {
  const config = parseEnv(Env);
  // every connector's settings are checked before anything starts: a missing URL or key names itself
  const deliveries = demoConnectors.map((c) => resolveDelivery(c, process.env));
  const metrics = createMetrics('deliver');
  const readiness = new Readiness();
  const ops = await startOpsServer({ port: config.DELIVER_OPS_PORT, host: config.DELIVER_OPS_HOST, registry: metrics.registry, readiness });
  const bus = await connectBus({ config, name: 'deliver', log, metrics, readiness });
  await bus.applyTopology();
  const stopWatch = watchJetStream(bus.jsm, bus.names.streams.deliveries, readiness, log);
  const deliverMetrics = createDeliverMetrics(metrics.registry);
  const deliverers = deliveries.map((delivery) => createDeliverer({ bus, delivery, log, metrics: deliverMetrics, concurrency: config.DELIVER_CONCURRENCY }));
  const running = await Promise.all(deliverers.map((d) => d.start()));
  // credentials checked now, so a wrong client secret shows in /readyz, not at the first event
  for (const [i, d] of deliverers.entries()) {
    const check = `credentials:${deliveries[i]!.connector.name}`;
    readiness.require(check, 'checking credentials');
    const problem = await d.checkCredentials();
    readiness.set(check, !problem, problem);
    if (problem) log.error({ connector: deliveries[i]!.connector.name }, `credentials refused: ${problem}`);
  }
  const expiry = setInterval(() => {
    for (const [i, d] of deliverers.entries()) {
      const at = d.tokenExpiresAtMs();
      if (at) deliverMetrics.tokenExpiry.set({ connector: deliveries[i]!.connector.name }, Math.floor(at / 1000));
    }
  }, 10_000);
  expiry.unref();
  log.info({ connectors: deliveries.map((d) => d.connector.name), ops: ops.url }, 'deliver consuming');
  process.send?.({ type: 'ready', service: 'deliver', endpoints: { connectors: deliveries.map((d) => d.connector.name).join(','), health: `${ops.url}/readyz` } });

  onShutdown(log, async () => {
    clearInterval(expiry);
    stopWatch();
    await Promise.all(running.map((c) => c.stop()));
    await bus.close();
    await ops.close();
  });
}

main().catch((err: Error) => {
  log.fatal({ code: (err as { code?: string }).code }, err.message);
  process.exit(1);
});
