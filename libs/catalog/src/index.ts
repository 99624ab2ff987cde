export { ContactUpdated, demoSchemas, OrderCreated, StripeCustomerEvent } from './schemas.js';
export { crm, demoConnectors, warehouse } from './connectors.js';
export { demoSources, github, standard, stripe } from './sources.js';
export { CONFIG_FILES, describeCatalog, loadCatalog } from './load.js';
export type { Catalog } from './load.js';
