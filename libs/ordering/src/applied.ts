import type { KV } from '@nats-io/kv';
import { foldedVersions } from './fold.js';
import { keyOf } from './guard.js';

/**
 * The highest version of `entity` applied at `connector`'s target, as the ordering guard recorded it in the versions
 * bucket (`bus_versions`): the entity's key, or, when it has none, its folded partition (fold.ts); 0 when none is.
 * The one way other code reads applied versions: how they are stored may change.
 */
export async function appliedVersion(kv: KV, connector: string, entity: { type: string; id: string }): Promise<number> {
  const key = keyOf(connector, entity);
  const e = await kv.get(key);
  if (e?.operation !== 'PUT' || e.length === 0) return foldedVersions(kv).applied(connector, key);
  const applied = (e.json() as { applied?: unknown }).applied;
  // 0: maybe a key created over a folded entity whose partition was not looked at yet (guard.ts begin)
  return typeof applied === 'number' && applied > 0 ? applied : foldedVersions(kv).applied(connector, key);
}
