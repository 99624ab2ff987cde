export { acquireLease } from './lease.js';
export type { Lease, LeaseOptions, PreviousHolder } from './lease.js';
export { isCasConflict, MAX_DATA_BYTES } from './record.js';
export type { LeaseRecord } from './record.js';
