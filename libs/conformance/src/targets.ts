// One misbehaving target per connector under test, and the environment that points the connector at it.
import { BusError } from '@bus/errors';
import type { Catalog } from '@bus/catalog';
import type { Connector } from '@bus/connectors';
import { hashSeed } from './prng.js';
import type { FaultMix } from './fault-mix.js';
import type { OrderingMode, Sent } from './invariants.js';
import type { ConformanceProfile } from './profile.js';
import { type MisbehavingTarget, startMisbehavingTarget } from './target.js';

/** The fields of an http connector's `delivery` the kit reads (libs/delivery validates them in full). */
interface HttpDeliveryView {
  kind?: string;
  baseUrlEnv?: string;
  idempotencyHeader?: string;
  auth?: { kind: string; header?: string; env?: string };
  retry?: { attemptTimeoutMs?: number };
  retryByType?: Record<string, { attemptTimeoutMs?: number }>;
  ordering?: OrderingMode;
  gapWaitMs?: number;
}

/** libs/retry's and libs/delivery's defaults, for settings a connector leaves out. */
const DEFAULT_ATTEMPT_TIMEOUT_MS = 10_000;
const DEFAULT_GAP_WAIT_MS = 60_000;

export interface TargetUnderTest {
  connector: string;
  mode: OrderingMode;
  target: MisbehavingTarget;
  /** Entities whose current state is their latest sent version. */
  atLatest(sent: readonly Sent[]): number;
}

function checkable(c: Connector, profile: ConformanceProfile): boolean {
  const d = (c.delivery ?? {}) as HttpDeliveryView;
  return d.kind === 'http' && c.subscribes.some((s) => s.type === profile.eventType);
}

/**
 * Starts a target for every connector under test (the profile's list, else every `http`
 * connector taking the profile's event type) and the environment that points each at its
 * own: its base URL variable, and its API key variable when it uses one. Other auth kinds
 * (OAuth2, basic) are not supported by the kit yet: it says so.
 */
export async function targetsFor(o: { catalog: Catalog; profile: ConformanceProfile; seed: number; faults?: Partial<FaultMix>; ignoreIdempotencyKeys?: boolean }) {
  const names = o.profile.connectors ?? o.catalog.connectors.filter((c) => checkable(c, o.profile)).map((c) => c.name);
  if (names.length === 0) throw new BusError('CHAOS_CATALOG_UNSUPPORTED', 'permanent', `no http connector in the catalog (${o.catalog.from}) takes ${o.profile.eventType}: nothing to check`);
  const env: Record<string, string> = {};
  const list: TargetUnderTest[] = [];
  let gapWaitMs = 0;
  try {
    for (const name of names) {
      const c = o.catalog.connectors.find((x) => x.name === name);
      if (!c) throw new BusError('CHAOS_CATALOG_UNSUPPORTED', 'permanent', `connector "${name}" (the profile's connectors) is not in the catalog (${o.catalog.from})`);
      const d = (c.delivery ?? {}) as HttpDeliveryView;
      if (d.kind !== 'http' || !d.baseUrlEnv) throw new BusError('CHAOS_CATALOG_UNSUPPORTED', 'permanent', `connector "${name}": the kit runs http connectors only (delivery.kind is ${d.kind})`);
      const auth = d.auth ?? { kind: 'none' };
      if (auth.kind !== 'none' && auth.kind !== 'api-key') throw new BusError('CHAOS_CATALOG_UNSUPPORTED', 'permanent', `connector "${name}": auth ${auth.kind} is not supported by the kit (api-key or none)`);
      const attemptMs = Math.max(d.retry?.attemptTimeoutMs ?? DEFAULT_ATTEMPT_TIMEOUT_MS, ...Object.values(d.retryByType ?? {}).map((p) => p.attemptTimeoutMs ?? 0));
      const key = auth.kind === 'api-key' && auth.env ? (process.env[auth.env] ?? 'conformance-key') : undefined;
      const target = await startMisbehavingTarget({
        seed: hashSeed(o.seed, name), faults: o.faults, ignoreIdempotencyKeys: o.ignoreIdempotencyKeys, idempotencyHeader: d.idempotencyHeader,
        hangMs: attemptMs + 1_000, // held past the caller's timeout, then dropped
        apiKey: key && auth.header ? { header: auth.header, value: key } : undefined,
      });
      const mode = d.ordering ?? 'strict';
      list.push({
        connector: name, mode, target,
        atLatest(sent) {
          const latest = new Map<string, number>();
          for (const s of sent) latest.set(s.entity, Math.max(latest.get(s.entity) ?? 0, s.version));
          const state = target.state();
          return [...latest].filter(([e, v]) => state.get(e) === v).length;
        },
      });
      env[d.baseUrlEnv] = target.url;
      if (key && auth.env) env[auth.env] = key;
      if (mode === 'strict') gapWaitMs = Math.max(gapWaitMs, d.gapWaitMs ?? DEFAULT_GAP_WAIT_MS);
    }
  } catch (err) {
    await Promise.all(list.map((t) => t.target.close()));
    throw err;
  }
  return {
    list,
    env,
    /** The longest strict gap wait (ms); the kit's default catalog's when none is strict. */
    gapWaitMs: gapWaitMs || 3_000,
    /** Distinct (entity, version) pairs sent. */
    pairs: (sent: readonly Sent[]) => new Set(sent.map((s) => `${s.entity}@${s.version}`)).size,
    entities: (sent: readonly Sent[]) => new Set(sent.map((s) => s.entity)).size,
    close: () => Promise.all(list.map((t) => t.target.close())).then(() => undefined),
  };
}
