// deliver: wiring only — one deliverer per connector.
import { runService } from '@bus/bus';
import { describeCatalog, loadCatalog } from '@bus/catalog';
import { createDeliverer, createDeliverMetrics, resolveDelivery } from '@bus/delivery';
import { z } from 'zod';

runService({
  name: 'deliver',
  env: z.object({
    DELIVER_OPS_PORT: z.coerce.number().int().min(0).max(65_535).default(8082),
    DELIVER_OPS_HOST: z.string().default('127.0.0.1'),
    DELIVER_CONCURRENCY: z.coerce.number().int().min(1).max(1024).default(32),
    // entities idle this long leave bus_versions for their partition value (0: never); a pass this often
    DELIVER_FOLD_IDLE_MS: z.coerce.number().int().min(0).default(600_000),
    DELIVER_FOLD_EVERY_MS: z.coerce.number().int().min(100).default(60_000),
  }),
  ops: (c) => ({ port: c.DELIVER_OPS_PORT, host: c.DELIVER_OPS_HOST }),
  stream: (bus) => bus.names.streams.deliveries,
  async start({ bus, config, log, metrics, readiness }) {
    // every connector's settings are checked before anything is consumed: a missing URL or key names itself
    const catalog = await loadCatalog(); // BUS_CATALOG's, ./bus.config.js's, or the demo
    log.info({ catalog: catalog.from, via: catalog.via }, describeCatalog(catalog));
    const { connectors } = catalog;
    const deliveries = connectors.map((c) => resolveDelivery(c, process.env));
    const deliverMetrics = createDeliverMetrics(metrics.registry);
    const deliverers = deliveries.map((delivery) => createDeliverer({ bus, delivery, log, metrics: deliverMetrics, concurrency: config.DELIVER_CONCURRENCY,
      fold: { idleMs: config.DELIVER_FOLD_IDLE_MS, everyMs: config.DELIVER_FOLD_EVERY_MS } }));
    const running = await Promise.all(deliverers.map((d) => d.start()));
    // credentials checked now, so a wrong client secret shows in /readyz, not at the first event;
    // a failed check is repeated (the token endpoint may start after us), a passed one is not
    const failing = new Set<number>();
    const checkCredentials = async (i: number) => {
      const check = `credentials:${deliveries[i]!.connector.name}`;
      const problem = await deliverers[i]!.checkCredentials();
      readiness.set(check, !problem, problem);
      if (problem && !failing.has(i)) log.error({ connector: deliveries[i]!.connector.name }, `credentials refused: ${problem}`);
      if (!problem && failing.has(i)) log.info({ connector: deliveries[i]!.connector.name }, 'credentials accepted');
      if (problem) failing.add(i);
      else failing.delete(i);
    };
    for (const i of deliverers.keys()) readiness.require(`credentials:${deliveries[i]!.connector.name}`, 'checking credentials');
    await Promise.all([...deliverers.keys()].map(checkCredentials));
    const expiry = setInterval(() => {
      for (const i of failing) void checkCredentials(i);
      // connectors that need scopes are checked again while passing: the token is refreshed when due (also while idle), and a
      // refresh may bring fewer scopes (withdrawn at the provider); /readyz says so before the next delivery is tried
      for (const [i, d] of deliverers.entries()) if (!failing.has(i) && d.checksScopes) void checkCredentials(i);
      for (const [i, d] of deliverers.entries()) {
        const at = d.tokenExpiresAtMs();
        if (at) deliverMetrics.tokenExpiry.set({ connector: deliveries[i]!.connector.name }, Math.floor(at / 1000));
      }
    }, 5_000);
    expiry.unref();
    return {
      endpoints: { connectors: deliveries.map((d) => d.connector.name).join(',') },
      async stop() {
        clearInterval(expiry);
        await Promise.all(running.map((c) => c.stop()));
      },
    };
  },
});
