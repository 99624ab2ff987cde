export { createLogger, DEFAULT_PERSONAL_FIELDS, logFor, personalFieldPaths, personalFields, REDACT_PATHS, SECRET_HEADERS } from './logger.js';
export type { Logger, LoggerOptions, LogContext } from './logger.js';
export { createMetrics, LATENCY_BUCKETS_SEC } from './metrics.js';
export { labelFolder, OTHER_LABEL } from './labels.js';
export type { BusMetrics } from './metrics.js';
export { Readiness } from './readiness.js';
export type { Check } from './readiness.js';
export { startOpsServer } from './ops-server.js';
export type { OpsServer, OpsServerOptions } from './ops-server.js';
