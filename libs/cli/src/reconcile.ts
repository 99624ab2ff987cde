import { BusError } from '@bus/errors';
import { differencesOf as differences, reconcileRun, reconcileRuns, requestRun, resolveDifference } from '@bus/operations';
import { type ReportItem, reportStore, type RunReport } from '@bus/reconcile';
import type { Command } from 'commander';
import { formatAge, printTable, withBus } from './context.js';
import { emit, markFound } from './output.js';

const fmt = (v: unknown) => (v === undefined ? '–' : typeof v === 'string' ? v : JSON.stringify(v));

export function printRuns(runs: RunReport[]): void {
  printTable(runs.map((r) => ({
    run: r.runId, connector: r.connector, status: r.dryRun ? `${r.status} (dry run)` : r.status, started: r.startedAt.slice(0, 19).replace('T', ' '),
    took: r.endedAt ? formatAge(Date.parse(r.endedAt) - Date.parse(r.startedAt)) : '…', checked: r.checked, listed: r.listed,
    differences: differences(r), 'in flight': r.inFlight ?? 0, repaired: r.repaired, flagged: r.flagged,
  })));
}

export function printItems(items: ReportItem[]): void {
  printTable(items.map((i) => ({
    item: i.id, kind: i.kind, record: `${i.target.type} ${i.target.id}`, versions: `${i.sourceVersion ?? '–'} / ${i.targetVersion ?? '–'}`,
    fields: i.fields.map((f) => `${f.field}: ${fmt(f.source)} → ${fmt(f.target)}`).join('; ') || '–',
    decision: i.resolution ? `settled: ${i.resolution.as} (${i.resolution.by})` : i.decision,
  })));
}

export function registerReconcile(program: Command): void {
  const r = program.command('reconcile').description('compare sources with targets: repair the safe differences, flag the rest');
  r.command('run').requiredOption('--connector <name>').option('--dry-run', 'compare and report only; nothing is changed anywhere')
    .option('--no-wait', 'return once the run has started')
    .action(async (o: { connector: string; dryRun?: boolean; wait: boolean }) => withBus(async (bus) => {
      const a = await requestRun(bus, o.connector, o.dryRun ?? false);
      if ('error' in a) throw new BusError('RECONCILE_REFUSED', 'business', a.error);
      emit({ runId: a.runId, resumed: !!a.resumed, connector: o.connector, dryRun: !!o.dryRun });
      console.log(`${a.resumed ? 'resumed' : 'started'} run ${a.runId} of ${o.connector}${o.dryRun ? ' (dry run)' : ''}`);
      if (!o.wait) return;
      const store = reportStore(bus);
      for (let last = '';;) {
        const run = await store.readRun(a.runId);
        const line = run ? `${run.status}: ${run.checked} checked, ${run.listed} listed; ${differences(run)}${run.inFlight ? `; ${run.inFlight} in flight (left for the next run)` : ''}` : 'starting';
        if (line !== last) console.log(line);
        last = line;
        if (run && run.status !== 'running') {
          if (run.status === 'failed') throw new BusError('RECONCILE_RUN_FAILED', 'transient', `run ${a.runId} failed: ${run.error}`);
          emit(run);
          // exit 2 (docs/cli.md): a dry run that found differences, a run that left some flagged for a person
          if (run.dryRun ? Object.values(run.counts).some((n) => n > 0) : run.flagged > 0) markFound();
          return console.log(`done. Details: npm run bus -- reconcile report ${a.runId}`);
        }
        await new Promise((res) => setTimeout(res, 1_000));
      }
    }));
  r.command('report [runId]').description('the runs (newest first), or one run with every difference').option('--connector <name>').option('--json')
    .action(async (runId: string | undefined, o: { connector?: string; json?: boolean }) => withBus(async (bus) => {
      if (!runId) {
        const runs = await reconcileRuns(bus, o.connector);
        if (o.json) return emit(runs);
        if (runs.length === 0) return console.log('no reconcile runs yet: npm run bus -- reconcile run --connector <name>');
        return printRuns(runs);
      }
      const found = await reconcileRun(bus, runId);
      if (!found) throw new BusError('CLI_NOT_FOUND', 'business', `no run ${runId}; see: npm run bus -- reconcile report`);
      const { run, items } = found;
      if (o.json) return emit({ ...run, items });
      printRuns([run]);
      console.log('');
      if (items.length === 0) return console.log('no differences');
      printItems(items);
      console.log('\nsettle a flagged one: npm run bus -- reconcile resolve <item> --source | --target | --ignore');
    }));
  r.command('resolve <item>').description('settle a flagged difference (audited)')
    .option('--source', 'send the source\'s state to the target').option('--target', 'the target is right: stop flagging it').option('--ignore', 'leave it: stop flagging it')
    .option('--by <who>', 'recorded with the decision', process.env.USER ?? 'operator')
    .action(async (item: string, o: { source?: boolean; target?: boolean; ignore?: boolean; by: string }) => withBus(async (bus) => {
      const chosen = (['source', 'target', 'ignore'] as const).filter((k) => o[k]);
      if (chosen.length !== 1) throw new BusError('CLI_USAGE', 'business', 'say exactly one of --source, --target or --ignore');
      const settled = await resolveDifference(bus, item, chosen[0]!, o.by);
      emit(settled);
      console.log(`${settled.id} settled as ${chosen[0]} by ${o.by}${chosen[0] === 'source' ? ': a repair command went to deliver' : ''}`);
    }));
}
