import { createHash } from 'node:crypto';
import type { DeliveryCommand } from '@bus/connectors';
import type { TargetRecord } from '@bus/delivery';

/**
 * The kinds of difference between what the sources said (the projection) and a target:
 * - missing: the target has no record the source has → repair (safe)
 * - stale: the target has an older version, or a source-owned field differs, or it holds a
 *   record whose entity's latest event is a delete → repair (safe)
 * - target-newer: the target has a newer version than any event the bus has → flag
 * - unknown-to-source: the target has a record no source event explains → flag
 * A target-owned field that differs is not a difference: ownership says the target decides.
 */
export type DifferenceKind = 'missing' | 'stale' | 'target-newer' | 'unknown-to-source';
export const DIFFERENCE_KINDS: DifferenceKind[] = ['missing', 'stale', 'target-newer', 'unknown-to-source'];
/** The kinds reconcile may repair by itself; the rest wait for a person. */
export const SAFE_KINDS: ReadonlySet<DifferenceKind> = new Set(['missing', 'stale']);

export interface FieldDifference {
  field: string;
  source?: unknown;
  target?: unknown;
}

export interface Difference {
  kind: DifferenceKind;
  target: { type: string; id: string };
  sourceVersion?: number;
  targetVersion?: number;
  /** Source-owned fields that differ (all of the source's fields when the record is missing). */
  fields: FieldDifference[];
  /** The source deleted the entity: the target should not hold the record (the repair deletes it). */
  sourceDeleted?: boolean;
}

/** Targets hand numbers back as strings (PostgreSQL numeric/bigint) and null for absent: equal values, equal here. */
function normalise(v: unknown): unknown {
  if (v === null || v === undefined) return null;
  if (typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v))) return Number(v);
  if (v instanceof Date) return v.toISOString();
  if (Array.isArray(v)) return v.map(normalise);
  if (typeof v === 'object') return Object.fromEntries(Object.entries(v as Record<string, unknown>).filter(([, x]) => x !== undefined).sort(([a], [b]) => a.localeCompare(b)).map(([k, x]) => [k, normalise(x)]));
  return v;
}
/** Equal once normalised; scalars (nearly every field) are compared as they are, only arrays and objects through JSON. */
export function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  const [x, y] = [normalise(a), normalise(b)];
  if (x === y) return true;
  if (x === null || y === null || typeof x !== 'object' || typeof y !== 'object') return false;
  return JSON.stringify(x) === JSON.stringify(y);
}

/**
 * Compares what the connector would write for the source's latest state with what the
 * target holds. Only source-owned fields are compared: target-owned ones are the target's.
 * A delete expects no record: one the target still holds at that version or older is stale.
 */
export function compareRecord(expected: DeliveryCommand, actual: TargetRecord | undefined): Difference | undefined {
  if (expected.action === 'delete') {
    if (!actual) return undefined;
    const base = { target: expected.target, sourceVersion: expected.version, targetVersion: actual.version, fields: [], sourceDeleted: true };
    return actual.version > expected.version ? { ...base, kind: 'target-newer' } : { ...base, kind: 'stale' };
  }
  const owned = expected.sourceOwned.filter((f) => f in expected.fields);
  const base = { target: expected.target, sourceVersion: expected.version };
  if (!actual) return { ...base, kind: 'missing', fields: owned.map((field) => ({ field, source: expected.fields[field] })) };
  const differing = owned.filter((f) => !sameValue(expected.fields[f], actual.fields[f])).map((field) => ({ field, source: expected.fields[field], target: actual.fields[field] }));
  if (actual.version > expected.version) return { ...base, kind: 'target-newer', targetVersion: actual.version, fields: differing };
  if (actual.version < expected.version || differing.length > 0) return { ...base, kind: 'stale', targetVersion: actual.version, fields: differing };
  return undefined;
}

/** A record at the target that no source entity maps to. */
export function unknownRecord(actual: TargetRecord): Difference {
  return { kind: 'unknown-to-source', target: actual.key, targetVersion: actual.version, fields: [] };
}

/**
 * Personal fields are not copied into reports as they are: a short hash shows whether two
 * values are equal without showing either.
 */
export function redact(d: Difference, personal: ReadonlySet<string>): Difference {
  if (personal.size === 0) return d;
  const hide = (v: unknown) => (v === undefined ? undefined : `redacted:${createHash('sha256').update(JSON.stringify(v)).digest('hex').slice(0, 8)}`);
  return { ...d, fields: d.fields.map((f) => (personal.has(f.field) ? { field: f.field, source: hide(f.source), target: hide(f.target) } : f)) };
}
