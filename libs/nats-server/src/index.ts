export { findNatsServer, spawnNatsServer } from './spawn.js';
export type { NatsServerOptions, NatsServerProcess } from './spawn.js';
