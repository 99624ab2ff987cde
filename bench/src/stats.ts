/** Latency samples in ms → percentiles. */
export function percentile(samples: number[], p: number): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

export interface Figure {
  what: string;
  /** messages or requests per second */
  rate: number;
  p50Ms?: number;
  p99Ms?: number;
}

export function fmt(n: number | undefined, digits = 0): string {
  if (n === undefined || Number.isNaN(n)) return '-';
  return n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

/** Prints raw and bus figures side by side with their ratio. */
export function printPairs(title: string, pairs: { what: string; raw: Figure; bus: Figure }[]): void {
  console.log(`\n## ${title}\n`);
  console.log('| what | raw JetStream | through the bus | ratio | raw p50/p99 ms | bus p50/p99 ms |');
  console.log('|---|---:|---:|---:|---:|---:|');
  for (const { what, raw, bus } of pairs) {
    console.log(`| ${what} | ${fmt(raw.rate)} /s | ${fmt(bus.rate)} /s | ${fmt((bus.rate / raw.rate) * 100)} % | ${fmt(raw.p50Ms, 2)} / ${fmt(raw.p99Ms, 2)} | ${fmt(bus.p50Ms, 2)} / ${fmt(bus.p99Ms, 2)} |`);
  }
}

/** Runs a raw-vs-bus pair three times and keeps each side's median by rate (the README's Benchmarks section reports medians of 3). */
export async function medianOf3(fn: () => Promise<{ raw: Figure; bus: Figure }>): Promise<{ raw: Figure; bus: Figure }> {
  const runs: { raw: Figure; bus: Figure }[] = [];
  for (let i = 0; i < 3; i++) runs.push(await fn());
  const median = (side: 'raw' | 'bus') => runs.map((r) => r[side]).sort((a, b) => a.rate - b.rate)[1]!;
  return { raw: median('raw'), bus: median('bus') };
}

/** Least squares through (i, y): the rise over the points, as a share of the fitted start. */
export function growth(ys: number[]): { slopePerStep: number; rise: number } {
  const n = ys.length;
  if (n < 2) return { slopePerStep: 0, rise: 0 };
  const mx = (n - 1) / 2;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  ys.forEach((y, i) => {
    num += (i - mx) * (y - my);
    den += (i - mx) ** 2;
  });
  const slope = num / den;
  const start = my - slope * mx;
  return { slopePerStep: slope, rise: start > 0 ? (slope * (n - 1)) / start : 0 };
}
