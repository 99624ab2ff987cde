export { DAY_SEC } from './define.js';
export type { StreamDef, ConsumerDef, KvDef, Topology } from './define.js';
export { AUDIT_BUCKETS, auditBucket, checkPrefix, entityKey, fnv1a32, kvToken, names } from './names.js';
export type { Names } from './names.js';
export { projectionBucket, topology, workerConsumer } from './topology.js';
export type { TopologyOptions } from './topology.js';
