export { SchemaRegistry, schemaKey } from './schemas.js';
export type { Validation } from './schemas.js';
export { commandHeaders, DeliveryCommand } from './command.js';
export type { MappedCommand } from './command.js';
export { checkConnectors, defineConnector, subscriptionsFor } from './connector.js';
export type { Connector, ConnectorDefinition, DeliverySettings, Ownership, Subscription } from './connector.js';
export { applyOwnership, toCommands } from './map.js';
