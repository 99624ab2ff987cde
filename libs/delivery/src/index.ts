export { createDeliverer, deliverDurable } from './deliverer.js';
export type { Deliverer, DelivererOptions } from './deliverer.js';
export { callTarget } from './http.js';
export type { CallResult } from './http.js';
export { createDeliverMetrics } from './metrics.js';
export type { DeliverMetrics } from './metrics.js';
export { HttpDelivery, resolveDelivery } from './settings.js';
export type { ResolvedDelivery } from './settings.js';
