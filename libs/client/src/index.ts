export { createBusClient, publishDomainEvent } from './client.js';
export type { BusClient, BusClientOptions, OutgoingEvent, PublishResult } from './client.js';
