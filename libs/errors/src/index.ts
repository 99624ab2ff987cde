export { BusError, ConfigError, failureClassOf, describeError, FailureClasses } from './failure.js';
export type { FailureClass } from './failure.js';
export { classifyHttp } from './http.js';
