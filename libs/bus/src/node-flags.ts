/**
 * The V8 heap flags a service process is started with: launchers (`bus up`, the bench) pass
 * them to `node`. A service's live heap is ~30 MB, but with Node's defaults (semi-spaces of
 * 16 MB, the old generation grown far before a full collection) garbage between collections
 * took deliver to ~200 MB of RSS at full speed. An old generation bounded at 96 MB keeps each
 * pipeline service under 150 MB (README → Benchmarks). A smaller young generation as well
 * (--max-semi-space-size=4) cost 20–50 % more CPU per event in an A/B on an idle machine:
 * left at Node's default.
 * The bound is a hard one: a service whose live heap outgrew it would stop, out of memory,
 * and be restarted by its launcher — raise it with BUS_SERVICE_NODE_FLAGS.
 */
export const PIPELINE_NODE_FLAGS = ['--max-old-space-size=96'] as const;

/** The services PIPELINE_NODE_FLAGS apply to: the per-event path, whose live state is bounded (reconcile's grows with entities). */
const PIPELINE = new Set(['ingest', 'transform', 'deliver']);

/**
 * Node flags for `service`: BUS_SERVICE_NODE_FLAGS when set (space-separated, for every
 * service; empty = Node's defaults), else PIPELINE_NODE_FLAGS for ingest, transform and
 * deliver and none for the others.
 */
export function serviceNodeFlags(service: string, env: NodeJS.ProcessEnv = process.env): string[] {
  const given = env.BUS_SERVICE_NODE_FLAGS;
  if (given !== undefined) return given.split(/\s+/).filter(Boolean);
  return PIPELINE.has(service) ? [...PIPELINE_NODE_FLAGS] : [];
}
