export { startNats, waitForJetStream } from './nats.js';
export type { ClientAuth, StartOptions, TestNats } from './nats.js';
export { startCluster } from './cluster.js';
export type { TestCluster } from './cluster.js';
export { waitFor } from './wait.js';
export { uniquePrefix, freePort } from './prefix.js';
export { startProcess } from './process.js';
export type { TestProcess } from './process.js';
