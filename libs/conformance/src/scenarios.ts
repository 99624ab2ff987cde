// Process faults, each on a seeded schedule, applied while the load runs.
import { BusError } from '@bus/errors';
import type { Bus } from '@bus/bus';
import { setPaused } from '@bus/cli';
import type { TestCluster, TestNats } from '@bus/testkit';
import { between, pick, type Random } from './prng.js';
import type { Services } from './services.js';

/** Every scenario by name; `target-faults` runs the target's fault mix alone. */
export const SCENARIOS = ['target-faults', 'kill-deliver', 'kill-transform', 'pause', 'deliver-down', 'nats-restart', 'cluster-node'] as const;
export type ScenarioName = (typeof SCENARIOS)[number];

/** What a scenario may touch. */
export interface ScenarioContext {
  random: Random;
  services: Services;
  /** How many deliver processes run (slots 0…delivers-1). */
  delivers: number;
  bus: Bus;
  /** The single server (every scenario but cluster-node). */
  nats?: TestNats;
  /** The 3-node cluster (cluster-node). */
  cluster?: TestCluster;
  /** Connectors under test (paused and resumed together). */
  connectors: string[];
  /** The longest strict gap wait among them, ms. */
  gapWaitMs: number;
  /** Resolves when ingest has stored every event. */
  posted: Promise<void>;
  /** Resolves once `fraction` (0…1) of the (entity, version) pairs have reached the targets, or after 60 s (then says so). */
  whenApplied(fraction: number): Promise<void>;
  /** Resolves once `fraction` of the events have been stored by ingest. */
  whenPosted(fraction: number): Promise<void>;
  /** Resolves when the clock passes `atMs`. */
  until(atMs: number): Promise<void>;
  say(line: string): void;
}

/** Longer than the gap wait, by a seeded 30–100 %: the case where a wait counted from storage time expires. */
const beyondGap = (c: ScenarioContext) => Math.round(c.gapWaitMs * between(c.random, 1.3, 2));

const scenarios: Record<ScenarioName, (c: ScenarioContext) => Promise<void>> = {
  'target-faults': async () => undefined,

  /** Two deliver processes SIGKILLed at seeded points (calls in flight die with them), each started again. */
  async 'kill-deliver'(c) {
    const points = [between(c.random, 0.1, 0.4), between(c.random, 0.4, 0.7)];
    for (const p of points) {
      const i = Math.floor(c.random() * c.delivers);
      await c.whenApplied(p);
      c.say(`SIGKILL deliver#${i} at ${Math.round(p * 100)} % applied; started again at once`);
      await c.services.stop('deliver', i, 'SIGKILL');
      await c.services.start('deliver', i);
    }
  },

  /** transform SIGKILLed while events are still arriving, started again. */
  async 'kill-transform'(c) {
    const p = between(c.random, 0.2, 0.7);
    await c.whenPosted(p);
    c.say(`SIGKILL transform at ${Math.round(p * 100)} % posted; started again at once`);
    await c.services.stop('transform', 0, 'SIGKILL');
    await c.services.start('transform', 0);
  },

  /** An operator pauses the connectors (the KV key `bus connectors pause` writes) longer than the gap wait, then resumes. */
  async pause(c) {
    const before = c.random() < 0.5;
    const p = between(c.random, 0.1, 0.4);
    const holdMs = beyondGap(c);
    if (!before) await c.whenApplied(p);
    c.say(`bus connectors pause ${c.connectors.join(', ')} ${before ? 'before the load' : `at ${Math.round(p * 100)} % applied`}; resume ${holdMs} ms after the load is in`);
    for (const name of c.connectors) await setPaused(c.bus, name, true, 'conformance: operator pause');
    await c.posted;
    await c.until(Date.now() + holdMs);
    for (const name of c.connectors) await setPaused(c.bus, name, false, 'resumed');
    c.say('resumed');
  },

  /** Every deliver process down (a deploy: SIGTERM, or a crash: SIGKILL) longer than the gap wait, then started. */
  async 'deliver-down'(c) {
    const p = between(c.random, 0.1, 0.4);
    const signal = pick(c.random, ['SIGTERM', 'SIGKILL'] as const);
    const downMs = beyondGap(c);
    await c.whenApplied(p);
    c.say(`${signal} every deliver at ${Math.round(p * 100)} % applied; all started again ${downMs} ms after the load is in`);
    await Promise.all(Array.from({ length: c.delivers }, (_, i) => c.services.stop('deliver', i, signal)));
    await c.posted;
    await c.until(Date.now() + downMs);
    await Promise.all(Array.from({ length: c.delivers }, (_, i) => c.services.start('deliver', i)));
  },

  /** nats-server restarted mid-run: stopped cleanly, or killed (SIGKILL) and started, on the same port and store. */
  async 'nats-restart'(c) {
    if (!c.nats?.canRestart) throw new BusError('CHAOS_SCENARIO_UNSUPPORTED', 'permanent', 'nats-restart needs a nats-server the kit started (unset NATS_URL)');
    const p = between(c.random, 0.15, 0.5);
    const crash = c.random() < 0.5;
    await c.whenApplied(p);
    c.say(`nats-server ${crash ? 'SIGKILLed and started' : 'restarted'} at ${Math.round(p * 100)} % applied`);
    if (crash) {
      await c.nats.kill();
      await c.nats.start();
    } else await c.nats.restart();
  },

  /** One node of the 3-node cluster (BUS_REPLICAS=3) SIGKILLed mid-run; it stays down until the checks are done. */
  async 'cluster-node'(c) {
    if (!c.cluster) throw new BusError('CHAOS_SCENARIO_UNSUPPORTED', 'permanent', 'cluster-node runs on a cluster');
    const p = between(c.random, 0.15, 0.5);
    const i = Math.floor(c.random() * 3);
    await c.whenApplied(p);
    c.say(`SIGKILL cluster node n${i} at ${Math.round(p * 100)} % applied; left down`);
    await c.cluster.killNode(i);
  },
};

/** Runs scenario `name`'s faults; resolves when the last one has been applied. */
export function applyScenario(name: ScenarioName, c: ScenarioContext): Promise<void> {
  return scenarios[name](c);
}
