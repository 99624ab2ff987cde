// The promise, stated once and checked over what the target recorded.
import type { Apply } from './target.js';

/** How the connector orders a entity's versions (its `delivery.ordering`). */
export type OrderingMode = 'strict' | 'latest' | 'none';

/** One (entity, version) the run sent in; a version sent twice is listed twice. */
export interface Sent {
  /** `<type>/<id>` of the target record, as the target records it. */
  entity: string;
  version: number;
}

/** What the bus still holds for the connector after the run, read by readBusCounts. */
export interface BusCounts {
  /** DLQ entries for the connector (every stage). */
  deadLettered: number;
  /** Commands still stored in DELIVERIES plus unfinished messages of the durable consumers involved. */
  pending: number;
  /** One line per DLQ entry or non-empty consumer, for the examples. */
  details: string[];
}

export interface Counts {
  /** (entity, version) applies beyond the first: a second business outcome. */
  appliedTwice: number;
  /** Applies of a version lower than one applied before for that entity (older over newer). */
  outOfOrder: number;
  /** strict only: (entity, version) sent and never applied. */
  skipped: number;
  /** Entities whose final state is not their latest sent version (or absent). */
  notLatest: number;
  deadLettered: number;
  pending: number;
  /** Applies of an entity or version that was never sent (a wiring mistake in the run). */
  unsent: number;
}

export interface Verdict {
  ok: boolean;
  mode: OrderingMode;
  counts: Counts;
  /** Readable first examples of each kind of failure. */
  examples: string[];
}

const EXAMPLES_PER_KIND = 5;

/**
 * Checks one connector's run. Every mode: no (entity, version) applied twice, the final
 * state of every entity is its latest version, nothing dead-lettered (the suite injects
 * transient faults only), nothing pending or in flight. strict and latest: never an older
 * version applied after a newer one. strict: every version sent was applied.
 */
export function checkInvariants(mode: OrderingMode, sent: readonly Sent[], applies: readonly Apply[], finalState: ReadonlyMap<string, number>, bus: BusCounts): Verdict {
  const examples: string[] = [];
  const note = (kind: keyof Counts, n: number, line: string) => {
    if (n <= EXAMPLES_PER_KIND) examples.push(`${kind}: ${line}`);
  };
  const expected = new Map<string, Set<number>>();
  for (const s of sent) (expected.get(s.entity) ?? expected.set(s.entity, new Set()).get(s.entity)!).add(s.version);
  const counts: Counts = { appliedTwice: 0, outOfOrder: 0, skipped: 0, notLatest: 0, deadLettered: bus.deadLettered, pending: bus.pending, unsent: 0 };

  const seen = new Map<string, Map<number, number>>(); // entity → version → times applied
  const highest = new Map<string, number>();
  for (const a of [...applies].sort((x, y) => x.seq - y.seq)) {
    if (a.action === 'delete') continue;
    const versions = seen.get(a.entity) ?? seen.set(a.entity, new Map()).get(a.entity)!;
    const times = (versions.get(a.version) ?? 0) + 1;
    versions.set(a.version, times);
    if (!expected.get(a.entity)?.has(a.version)) note('unsent', ++counts.unsent, `${a.entity} v${a.version} applied (seq ${a.seq}) but never sent`);
    if (times > 1) note('appliedTwice', ++counts.appliedTwice, `${a.entity} v${a.version} applied ${times} times (seq ${a.seq}, key ${a.idempotencyKey ?? '-'})`);
    const top = highest.get(a.entity) ?? 0;
    if (mode !== 'none' && a.version < top) note('outOfOrder', ++counts.outOfOrder, `${a.entity} v${a.version} applied (seq ${a.seq}) after v${top}`);
    highest.set(a.entity, Math.max(top, a.version));
  }

  for (const [entity, versions] of expected) {
    const latest = Math.max(...versions);
    if (mode === 'strict') {
      const missing = [...versions].filter((v) => !seen.get(entity)?.has(v)).sort((x, y) => x - y);
      for (const v of missing) note('skipped', ++counts.skipped, `${entity} v${v} never applied`);
    }
    const final = finalState.get(entity);
    if (final !== latest) note('notLatest', ++counts.notLatest, `${entity} ends at ${final === undefined ? 'nothing' : `v${final}`}, latest sent v${latest}`);
  }
  const shown = EXAMPLES_PER_KIND * 2;
  for (const line of bus.details.slice(0, shown)) examples.push(`bus: ${line}`);
  if (bus.details.length > shown) examples.push(`bus: … and ${bus.details.length - shown} more`);

  const ok = Object.values(counts).every((n) => n === 0);
  return { ok, mode, counts, examples };
}
