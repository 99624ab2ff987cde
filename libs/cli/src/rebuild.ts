import { BusError } from '@bus/errors';
import type { Bus } from '@bus/bus';
import { rebuildProjection, type RebuildProgress, type RebuildResult } from '@bus/projection';
import type { Command } from 'commander';
import { cliLog, withBus } from './context.js';
import { parseSince } from './dlq.js';
import { emit, ExitCodes } from './output.js';

const n = (x: number) => x.toLocaleString('en-US');

/** One progress line: where the rebuild is, how fast, and what it did so far. */
export function progressLine(p: RebuildProgress): string {
  const pct = p.lastSeq > 0 ? ` (${((100 * p.seq) / p.lastSeq).toFixed(1)} %)` : '';
  const c = p.counts;
  const seeded = c.seeded ? `, copied ${n(c.seeded)}` : '';
  const unreadable = c.unreadable ? `, unreadable ${n(c.unreadable)}` : '';
  return `${p.phase.padEnd(11)} generation ${p.generation}  seq ${n(p.seq)} / ${n(p.lastSeq)}${pct}  ${n(p.eventsPerSec)} events/s  ` +
    `applied ${n(c.applied)}, stale ${n(c.stale)}, duplicate ${n(c.duplicate)}${seeded}${unreadable}`;
}

/** The last line: what happened and, when interrupted, how to go on. */
export function resultLine(r: RebuildResult): string {
  const rate = r.elapsedMs > 0 ? Math.round((r.events * 1000) / r.elapsedMs) : 0;
  const read = `${n(r.events)} events read from sequence ${n(r.startedAtSeq)}${r.resumed ? ' (resumed)' : ''} in ${(r.elapsedMs / 1000).toFixed(1)} s (${n(rate)}/s)`;
  if (r.interrupted) {
    return `interrupted: generation ${r.generation} is complete up to sequence ${n(r.lastSeq)} and not active yet; ${read}. ` +
      'Run the same command again to resume from there (or add --restart to begin anew)';
  }
  const replaced = r.previous === undefined ? '' : r.keptPrevious
    ? `; generation ${r.previous} is kept, frozen, until the next rebuild deletes it`
    : `; generation ${r.previous} is deleted (--keep-previous keeps it for a rollback)`;
  return `done: generation ${r.generation} is active${replaced}; ${read}`;
}

/** `bus rebuild projection`: runs the rebuild, printing a line per second; Ctrl-C stops at a checkpoint. */
export async function runRebuild(bus: Bus, o: { fromSeq?: string; since?: string; restart?: boolean; keepPrevious?: boolean }, print: (line: string) => void = console.log, signal?: AbortSignal): Promise<RebuildResult> {
  if (o.fromSeq !== undefined && o.since !== undefined) throw new BusError('CLI_USAGE', 'business', 'give --from-seq or --since, not both');
  const fromSeq = o.fromSeq === undefined ? undefined : Number(o.fromSeq);
  if (fromSeq !== undefined && (!Number.isInteger(fromSeq) || fromSeq < 1)) throw new BusError('CLI_USAGE', 'business', `--from-seq "${o.fromSeq}" must be a whole number from 1 (an EVENTS sequence, see: bus streams status)`);
  const r = await rebuildProjection({
    bus, log: cliLog, fromSeq, sinceMs: o.since ? parseSince(o.since) : undefined, restart: o.restart, keepPrevious: o.keepPrevious, signal,
    onProgress: (p) => print(progressLine(p)),
  });
  print(resultLine(r));
  return r;
}

export function registerRebuild(program: Command): void {
  const rebuild = program.command('rebuild').description('rebuild what the bus derives from EVENTS, by replay');
  rebuild.command('projection')
    .description('replay EVENTS into a fresh projection generation and switch to it once caught up; Ctrl-C stops at a checkpoint, running it again resumes')
    .option('--from-seq <n>', 'first EVENTS sequence to replay; entries from earlier events are kept from the active generation')
    .option('--since <when>', 'replay events stored since (2h, 3d, ISO time); the same rule for earlier ones')
    .option('--restart', 'abandon an unfinished rebuild (its bucket is deleted) and start a new one')
    .option('--keep-previous', 'keep the replaced generation, frozen, for a rollback until the next rebuild (default: deleted once this one is done)')
    .action(async (o: { fromSeq?: string; since?: string; restart?: boolean; keepPrevious?: boolean }) => withBus(async (bus) => {
      const stop = new AbortController();
      const onSigint = () => {
        console.log('stopping at the next checkpoint …');
        stop.abort();
      };
      process.once('SIGINT', onSigint);
      try {
        const r = await runRebuild(bus, o, console.log, stop.signal);
        emit(r);
        if (r.interrupted) process.exitCode = ExitCodes.interrupted;
      } finally {
        process.off('SIGINT', onSigint);
      }
    }));
}
