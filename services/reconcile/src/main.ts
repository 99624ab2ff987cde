// reconcile: wiring only — the live projection, reconcile runs per connector (on a schedule and on
// request), and the sources' change listings polled for webhooks that never arrived.
import { runService } from '@bus/bus';
import { describeCatalog, loadCatalog } from '@bus/catalog';
import { resolveDelivery } from '@bus/delivery';
import { type AnySource, createIntake, createIntakeMetrics, pollSourceChanges, watchSourceRhythm } from '@bus/intake';
import { createProjectionMetrics, createProjector } from '@bus/projection';
import { createReconcileMetrics, createReconciler } from '@bus/reconcile';
import { z } from 'zod';

runService({
  name: 'reconcile',
  env: z.object({
    RECONCILE_OPS_PORT: z.coerce.number().int().min(0).max(65_535).default(8083),
    RECONCILE_OPS_HOST: z.string().default('127.0.0.1'),
    /** Seconds between runs of each connector; 0 = only on request (bus reconcile run). */
    RECONCILE_EVERY_SEC: z.coerce.number().int().min(0).default(3_600),
    RECONCILE_PAGE_SIZE: z.coerce.number().int().min(1).max(10_000).default(500),
    /** Fields reports show only as a short hash. */
    RECONCILE_PERSONAL_FIELDS: z.string().default('email,phone,name'),
    /** 0 = sources' change listings are never polled here. */
    RECONCILE_POLL_SOURCES: z.enum(['0', '1']).default('1'),
    /** Days of EVENTS a source's rhythm is learned from when it declares no expectEverySec; 0 = only declared rhythms are watched. */
    SOURCE_RHYTHM_LEARN_DAYS: z.coerce.number().min(0).max(365).default(7),
  }),
  ops: (c) => ({ port: c.RECONCILE_OPS_PORT, host: c.RECONCILE_OPS_HOST }),
  stream: (bus) => bus.names.streams.events,
  async start({ bus, config, log, metrics }) {
    const catalog = await loadCatalog(); // BUS_CATALOG's, ./bus.config.js's, or the demo
    log.info({ catalog: catalog.from, via: catalog.via }, describeCatalog(catalog));
    const { connectors, schemas, sources } = catalog;
    const projector = await createProjector({ bus, log, metrics: createProjectionMetrics(metrics.registry) }).start();
    // a connector is reconciled when its target can look records up; the others are named, not silently skipped
    const deliveries = connectors.map((c) => resolveDelivery(c, process.env));
    const able = deliveries.filter((d) => d.target.lookup || d.target.lookupMany);
    for (const d of deliveries) if (!able.includes(d)) log.warn({ connector: d.connector.name }, 'not reconciled: its target has no lookup (add one to its delivery settings)');
    const reconciler = await createReconciler({
      bus, deliveries: able, log, schemas, metrics: createReconcileMetrics(metrics.registry), everySec: config.RECONCILE_EVERY_SEC, pageSize: config.RECONCILE_PAGE_SIZE,
      personalFields: config.RECONCILE_PERSONAL_FIELDS.split(',').map((f) => f.trim()).filter(Boolean),
    }).start();
    // missed webhooks: each source that can list its changes is polled on its own schedule, one poller at a time (lease)
    const listing = config.RECONCILE_POLL_SOURCES === '1' ? sources.filter((s) => s.changes) : [];
    const intake = createIntake({ bus, sources, env: process.env, log, metrics: createIntakeMetrics(metrics.registry), webhooks: false });
    const stopping = new AbortController();
    const polls = new Set<Promise<unknown>>();
    const pollNow = (source: AnySource) => {
      const p = pollSourceChanges({ bus, intake, source, env: process.env, log, signal: stopping.signal, registry: metrics.registry })
        .catch((err: Error) => log.error({ err, source: source.name }, 'polling the source\'s changes failed'))
        .finally(() => polls.delete(p));
      polls.add(p);
    };
    const timers = listing.map((source) => setInterval(() => pollNow(source), (source.changes?.everySec ?? 300) * 1_000).unref());
    // silent sources: a source quiet for longer than its rhythm is reported, and its listing (if any) polled at once
    const stopRhythm = watchSourceRhythm({ bus, sources, log, registry: metrics.registry, learnWindowMs: config.SOURCE_RHYTHM_LEARN_DAYS * 86_400_000,
      onQuiet: (source) => {
        if (listing.includes(source)) pollNow(source);
      } });
    return {
      endpoints: { reconciles: able.map((d) => d.connector.name).join(',') || 'none', everySec: String(config.RECONCILE_EVERY_SEC),
        polls: listing.map((s) => s.name).join(',') || 'none' },
      async stop() {
        for (const t of timers) clearInterval(t);
        stopRhythm();
        stopping.abort();
        await Promise.allSettled(polls);
        await intake.close(); // the dedup entries of what the last poll stored
        await reconciler.stop();
        await projector.stop();
        await Promise.all(deliveries.map((d) => d.target.close?.()));
      },
    };
  },
});
