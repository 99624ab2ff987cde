// transform: wiring only — one consumer per connector, events to delivery commands.
import { runService } from '@bus/bus';
import { describeCatalog, loadCatalog } from '@bus/catalog';
import { createTransformer, createTransformMetrics } from '@bus/transformer';
import { z } from 'zod';

runService({
  name: 'transform',
  env: z.object({
    TRANSFORM_OPS_PORT: z.coerce.number().int().min(0).max(65_535).default(8081),
    TRANSFORM_OPS_HOST: z.string().default('127.0.0.1'),
    TRANSFORM_CONCURRENCY: z.coerce.number().int().min(1).max(1024).default(32),
  }),
  ops: (c) => ({ port: c.TRANSFORM_OPS_PORT, host: c.TRANSFORM_OPS_HOST }),
  stream: (bus) => bus.names.streams.events,
  async start({ bus, config, log, metrics }) {
    const catalog = await loadCatalog(); // BUS_CATALOG's, ./bus.config.js's, or the demo
    log.info({ catalog: catalog.from, via: catalog.via }, describeCatalog(catalog));
    const { connectors, schemas, sources } = catalog;
    // sources: for refetch (the current record from the source's API, read with its one client: settings from the environment)
    const transformer = createTransformer({ bus, connectors, schemas, sources, env: process.env, log, metrics: createTransformMetrics(metrics.registry), concurrency: config.TRANSFORM_CONCURRENCY });
    const running = await transformer.start();
    return {
      endpoints: { connectors: [...running.keys()].join(',') },
      stop: async () => void (await Promise.all([...running.values()].map((c) => c.stop()))),
    };
  },
});
