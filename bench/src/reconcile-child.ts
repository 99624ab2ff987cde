// The reconcile process of the reconcile bench: its own process, so its peak RSS (VmHWM) is
// the reconcile run's alone. Connects, says `ready`, runs one dry run of the bench connector
// when told, reports progress and the result over IPC, then waits to be told to exit (so the
// parent can read /proc/<pid>/status while it is still there).
import { connectBus, loadBusConfig } from '@bus/bus';
import { demoSchemas } from '@bus/catalog';
import { resolveDelivery } from '@bus/delivery';
import { createLogger } from '@bus/observability';
import { runReconcile } from '@bus/reconcile';
import { benchConnector } from './reconcile-data.js';

const send = (m: unknown) => process.send?.(m);
const log = createLogger({ service: 'bench-reconcile', level: process.env.LOG_LEVEL ?? 'warn' });
const bus = await connectBus({ config: loadBusConfig({ NATS_URL: process.env.NATS_URL, BUS_PREFIX: process.env.BUS_PREFIX }), name: 'bench-reconcile', log });
const delivery = resolveDelivery(benchConnector(process.env.BENCH_PG_SCHEMA!), { PG_URL: process.env.PG_URL });
process.on('disconnect', () => process.exit(0)); // the bench is gone

process.on('message', async (m: { type?: string }) => {
  if (m?.type === 'exit') {
    await delivery.target.close?.();
    await bus.close();
    process.exit(0);
  }
  if (m?.type !== 'run') return;
  const started = performance.now();
  let projectionDoneMs: number | undefined;
  let lastSent = 0;
  try {
    const report = await runReconcile({
      bus, delivery, log, schemas: demoSchemas, dryRun: true, pageSize: Number(process.env.BENCH_PAGE_SIZE ?? 500),
      personalFields: ['email', 'phone', 'name'], // the service's default RECONCILE_PERSONAL_FIELDS: reports hash them
      settleMs: 0, // no transform in the bench: the projection is all there will be (settled rule, libs/reconcile README)
      onProgress: (r) => {
        const now = performance.now();
        if (r.checkpoint?.phase === 'projection') projectionDoneMs = now - started; // the last one: phase 1 over, listing next
        if (now - lastSent > 1_000) {
          lastSent = now;
          send({ type: 'progress', checked: r.checked, listed: r.listed, phase: r.checkpoint?.phase, ms: now - started });
        }
      },
    });
    send({ type: 'done', report, ms: performance.now() - started, projectionMs: projectionDoneMs });
  } catch (err) {
    send({ type: 'failed', error: (err as Error).stack ?? String(err) });
  }
});
send({ type: 'ready' });
