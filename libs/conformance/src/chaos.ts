// npm run chaos: the long form — many seeds × every scenario, a table of counts, exit 1 when an invariant fails.
import { ConfigError } from '@bus/errors';
import { resolve } from 'node:path';
import { startNats, type TestNats } from '@bus/testkit';
import type { FaultMix } from './fault-mix.js';
import { formatFailure, formatTable } from './report.js';
import { type ChaosResult, runChaos } from './runner.js';
import { type ScenarioName, SCENARIOS } from './scenarios.js';

const env = process.env;
const int = (name: string, fallback: number) => {
  const v = env[name];
  if (v === undefined || v === '') return fallback;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) throw new ConfigError(`${name} must be a whole number ≥ 0, got "${v}"`);
  return n;
};

function settings() {
  const scenarios = (env.CHAOS_SCENARIOS ?? SCENARIOS.join(',')).split(',').map((s) => s.trim()).filter(Boolean);
  const unknown = scenarios.filter((s) => !(SCENARIOS as readonly string[]).includes(s));
  if (unknown.length) throw new ConfigError(`CHAOS_SCENARIOS: unknown ${unknown.join(', ')}; known: ${SCENARIOS.join(', ')}`);
  const base = env.CHAOS_SEED ? int('CHAOS_SEED', 0) : int('CHAOS_BASE_SEED', Math.floor(Math.random() * 1_000_000));
  const seeds = env.CHAOS_SEED ? [base] : Array.from({ length: int('CHAOS_SEEDS', 20) }, (_, i) => base + i);
  const faults: Partial<FaultMix> = {};
  for (const part of (env.CHAOS_FAULTS ?? '').split(',').filter(Boolean)) {
    const [k, v] = part.split('=');
    faults[k!.trim() as keyof FaultMix] = Number(v);
  }
  const catalog = env.BUS_CATALOG ? resolve(env.INIT_CWD ?? process.cwd(), env.BUS_CATALOG) : undefined;
  return {
    scenarios: scenarios as ScenarioName[], seeds, faults, catalog,
    entities: int('CHAOS_ENTITIES', 60), versions: int('CHAOS_VERSIONS', 8), delivers: int('CHAOS_DELIVERS', 3),
    duplicateFraction: Number(env.CHAOS_DUPLICATES ?? 0.1), reconcileEverySec: int('CHAOS_RECONCILE_EVERY_SEC', 0),
    ignoreIdempotencyKeys: env.CHAOS_HONOUR_IDEMPOTENCY_KEYS !== '1',
  };
}

async function main(): Promise<number> {
  const s = settings();
  console.log(`chaos: seeds ${s.seeds.join(', ')}; scenarios ${s.scenarios.join(', ')}; ${s.entities} entities × ${s.versions} versions, ` +
    `${s.duplicateFraction * 100} % sent twice, ${s.delivers} deliver processes, reconcile ${s.reconcileEverySec ? `every ${s.reconcileEverySec} s` : 'off'}, ` +
    `target ${s.ignoreIdempotencyKeys ? 'ignores' : 'honours'} idempotency keys; catalog ${s.catalog ?? 'the kit\'s (crm strict, crm-latest)'}`);
  let nats: TestNats | undefined;
  const results: ChaosResult[] = [];
  try {
    for (const seed of s.seeds) {
      for (const scenario of s.scenarios) {
        if (scenario !== 'cluster-node') nats ??= await startNats();
        const r = await runChaos({ ...s, seed, scenario, nats: scenario === 'cluster-node' ? undefined : nats });
        results.push(r);
        const counts = r.connectors.map((c) => `${c.connector}: ${Object.entries(c.verdict.counts).map(([k, n]) => `${k} ${n}`).join(' ')}`).join(' | ');
        console.log(`${r.ok ? 'ok  ' : 'FAIL'} seed ${seed} ${scenario} (${(r.elapsedMs / 1000).toFixed(0)} s) ${counts}${r.crashes.length ? ` crashes ${r.crashes.length}` : ''}`);
        if (!r.ok) console.log(formatFailure(r));
      }
    }
  } finally {
    await nats?.stop({ removeStore: true });
  }
  console.log(`\n${formatTable(results)}\n`);
  const failed = results.filter((r) => !r.ok);
  console.log(failed.length ? `${failed.length} of ${results.length} runs broke an invariant; replay one with the command under it above.` : `all ${results.length} runs kept every invariant.`);
  return failed.length ? 1 : 0;
}

main().then((code) => process.exit(code), (err: Error) => {
  console.error(`chaos: ${err.message}`);
  process.exit(2);
});
