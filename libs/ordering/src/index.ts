export { createOrderingGuard } from './guard.js';
export type { Begin, GuardOptions, OrderingGuard, OrderingMode, Token } from './guard.js';
