export { DAY_SEC } from './define.js';
export type { StreamDef, ConsumerDef, KvDef, Topology } from './define.js';
export { fnv1a32, hash53 } from './hash.js';
export { AUDIT_BUCKETS, auditBucket, checkPrefix, entityKey, kvToken, names } from './names.js';
export type { Names } from './names.js';
export { projectionBucket, topology, workerConsumer } from './topology.js';
export type { TopologyOptions } from './topology.js';
