import { BusError } from '@bus/errors';
import { loadCatalog } from '@bus/catalog';
import { createMetrics } from '@bus/observability';
import { createTransformer, createTransformMetrics } from '@bus/transformer';
import type { Command } from 'commander';
import { cliLog, withBus } from './context.js';
import { parseSince } from './dlq.js';
import { emit } from './output.js';

export function registerReplay(program: Command): void {
  program
    .command('replay')
    .description('re-deliver a range of EVENTS to one connector (a new target, or after a fix); targets that already have a version skip it')
    .requiredOption('--connector <name>', 'the connector to re-deliver to')
    .option('--since <when>', 'events stored since (2h, 3d, ISO time); starts there at once, however big EVENTS is')
    .option('--from-seq <n>', 'first EVENTS sequence')
    .option('--to-seq <n>', 'last EVENTS sequence')
    .action(async (o: { connector: string; since?: string; fromSeq?: string; toSeq?: string }) => withBus(async (bus) => {
      const { connectors, schemas, sources } = await loadCatalog(); // the demo, or BUS_CATALOG's: the one the services run
      const connector = connectors.find((c) => c.name === o.connector);
      if (!connector) throw new BusError('CLI_UNKNOWN_CONNECTOR', 'business', `no connector "${o.connector}"; known: ${connectors.map((c) => c.name).join(', ')}`);
      if (!o.since && !o.fromSeq) throw new BusError('CLI_USAGE', 'business', 'say where to start: --since 2h or --from-seq N');
      const transformer = createTransformer({ bus, connectors: [connector], schemas, sources, log: cliLog, metrics: createTransformMetrics(createMetrics('cli').registry) });
      const r = await transformer.replay(connector, {
        fromSeq: o.fromSeq ? Number(o.fromSeq) : undefined, toSeq: o.toSeq ? Number(o.toSeq) : undefined, sinceMs: o.since ? parseSince(o.since) : undefined,
      }, (n, seq) => console.log(`… ${n} events (at sequence ${seq})`));
      emit({ connector: connector.name, ...r });
      const range = r.firstSeq === undefined ? 'nothing in that range' : `sequences ${r.firstSeq}–${r.lastSeq}`;
      console.log(`${r.events} events read (${range}), ${r.handled} mapped for ${connector.name}, ${r.invalid} invalid (already in the DLQ from the live run)`);
    }));
}
