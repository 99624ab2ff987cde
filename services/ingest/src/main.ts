// ingest: wiring only — verified webhooks and the publish API, served with /healthz /readyz /metrics on one port.
import { runService } from '@bus/bus';
import { BusError } from '@bus/errors';
import { createEventsApi, createHttpApp, createIntake, createIntakeMetrics, parseApiTokens, serveReplays } from '@bus/intake';
import { z } from 'zod';
import { describeCatalog, loadCatalog } from '@bus/catalog';

runService({
  name: 'ingest',
  env: z.object({
    INGEST_PORT: z.coerce.number().int().min(0).max(65_535).default(8080),
    INGEST_HOST: z.string().default('127.0.0.1'),
    INGEST_MAX_BODY_BYTES: z.coerce.number().int().min(1024).default(1024 * 1024),
    INGEST_API_TOKENS: z.string().min(1, 'required: bearer token(s) for POST /events, each bound to its sources: token:source|source, comma-separated to rotate (README → Configuration)'),
  }),
  stream: (bus) => bus.names.streams.events,
  async start({ bus, config, log, metrics, readiness }) {
    const intakeMetrics = createIntakeMetrics(metrics.registry);
    const catalog = await loadCatalog(); // BUS_CATALOG's, ./bus.config.js's, or the demo
    log.info({ catalog: catalog.from, via: catalog.via }, describeCatalog(catalog));
    const { sources } = catalog;
    const intake = createIntake({ bus, sources, env: process.env, log, metrics: intakeMetrics });
    // ready once the dedup index has read DEDUP back: before that, a retry of days ago could pass
    readiness.require('dedup', 'reading the dedup records of the sources\' horizons (DEDUP)');
    const dedupStarted = intake.dedup.start().then(() => readiness.set('dedup', true), (err) => {
      if (err instanceof BusError && err.failureClass === 'permanent') throw err; // a horizon DEDUP cannot hold: fix the source
      log.error({ err }, 'dedup: could not read DEDUP; requests will try again');
      readiness.set('dedup', true); // each request retries the read and answers 503 while it fails
    });
    await Promise.race([dedupStarted, new Promise((r) => setTimeout(r, 1_000))]); // a configuration error stops start-up; a slow read does not
    const tokens = parseApiTokens(config.INGEST_API_TOKENS);
    // a token without a source list may not publish as a webhook provider
    const eventsApi = createEventsApi({ bus, tokens, webhookSources: sources.map((s) => s.name), log, metrics: intakeMetrics });
    const app = createHttpApp({ intake, eventsApi, registry: metrics.registry, readiness, maxBodyBytes: config.INGEST_MAX_BODY_BYTES, log });
    const stopReplays = serveReplays(bus, intake, log);
    await app.listen({ port: config.INGEST_PORT, host: config.INGEST_HOST });
    const url = `http://${config.INGEST_HOST}:${(app.server.address() as { port: number }).port}`;
    return {
      endpoints: { webhooks: `${url}/webhooks/<source>`, events: `${url}/events`, health: `${url}/readyz` },
      async stop() {
        stopReplays();
        await app.close(); // stop taking requests; answers in flight complete
        await intake.close(); // the last dedup batch is stored before the bus closes
      },
    };
  },
});
