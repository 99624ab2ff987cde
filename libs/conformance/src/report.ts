// How a run reads: one table row per (seed, scenario, connector), then the first examples of what failed.
import type { ChaosResult } from './runner.js';

/** The table of counts, one row per connector of each run. */
export function formatTable(results: readonly ChaosResult[]): string {
  const rows = results.flatMap((r) => r.connectors.map((c) => ({
    seed: String(r.seed), scenario: r.scenario, connector: c.connector, mode: c.mode,
    pairs: String(r.load.pairs), applies: String(c.applies),
    twice: String(c.verdict.counts.appliedTwice), order: String(c.verdict.counts.outOfOrder), skipped: String(c.verdict.counts.skipped),
    dlq: String(c.verdict.counts.deadLettered), notLatest: String(c.verdict.counts.notLatest), pending: String(c.verdict.counts.pending),
    crashes: String(r.crashes.length), secs: (r.elapsedMs / 1000).toFixed(0),
    verdict: r.timedOut ? 'FAIL (never quiet)' : c.verdict.ok && r.crashes.length === 0 ? 'ok' : 'FAIL',
  })));
  if (rows.length === 0) return '(no runs)';
  const cols = Object.keys(rows[0]!) as (keyof (typeof rows)[number])[];
  const width = cols.map((k) => Math.max(k.length, ...rows.map((r) => r[k].length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(width[i]!)).join('  ').trimEnd();
  return [line(cols), ...rows.map((r) => line(cols.map((k) => r[k])))].join('\n');
}

/** What a failed run did and the first examples of each failure, with the command that replays it. */
export function formatFailure(r: ChaosResult): string {
  const lines = [`seed ${r.seed} ${r.scenario}: ${r.load.events} events posted (${r.load.pairs} distinct versions; ${r.load.sameIdTwice} resent with the same id, ${r.load.newIdTwice} with a new id)`];
  for (const s of r.schedule) lines.push(`  did: ${s}`);
  for (const c of r.connectors) {
    if (c.verdict.ok) continue;
    const answers = Object.entries(c.targetCounts).filter(([, n]) => n > 0).map(([k, n]) => `${k} ${n}`).join(', ');
    lines.push(`  ${c.connector} (${c.mode}): ${Object.entries(c.verdict.counts).filter(([, n]) => n > 0).map(([k, n]) => `${k} ${n}`).join(', ')}; target answered: ${answers}`);
    for (const e of c.verdict.examples) lines.push(`    ${e}`);
  }
  for (const c of r.crashes) lines.push(`  crash: ${c}`);
  lines.push(`  replay: ${r.replay}`);
  return lines.join('\n');
}
