// The demo connectors `npm start` runs: fan-out of one event to two targets.
import { checkConnectors, defineConnector } from '@bus/connectors';
import { demoSchemas } from './schemas.js';

type Stripe = { data: { object: { id: string; email?: string | null; name?: string | null } } };

/** A CRM: contacts from the standard and stripe sources, orders from anywhere. The CRM owns its scoring and account manager. */
export const crm = defineConnector({
  name: 'crm',
  description: 'demo CRM: contacts and orders',
  subscribes: [
    { type: 'contact.updated', source: 'standard', map: (d) => ({ action: 'upsert', target: { type: 'contact', id: String(d.id) },
      fields: { email: d.email, name: d.name, phone: d.phone } }) },
    // from Stripe's current customer, not the event's payload (thin events carry none; a late one a stale one); gone → delete
    ...(['customer.created', 'customer.updated'] as const).map((type) => ({
      type, source: 'stripe', refetch: { gone: (e: { entity: { id: string } }) => ({ action: 'delete', target: { type: 'contact', id: `stripe-${e.entity.id}` } }) },
      map: (d: Record<string, unknown>) => {
        const c = (d as Stripe).data.object;
        return { action: 'upsert', target: { type: 'contact', id: `stripe-${c.id}` }, fields: { email: c.email ?? undefined, name: c.name ?? undefined } };
      },
    })),
    // an order points at its contact: it goes only once the contact is at the CRM (dependencies below)
    { type: 'order.created', map: (d, e) => ({ action: 'upsert', target: { type: 'order', id: e.entity.id },
      fields: { contactId: d.contactId, total: d.total, currency: d.currency, stage: 'new' },
      ...(d.contactId ? { needs: [{ type: 'contact', id: String(d.contactId) }] } : {}) }) },
  ],
  // the CRM's people maintain these; an update from the bus must never overwrite them
  ownership: { targetOwned: ['leadScore', 'accountManager', 'stage'] },
  delivery: {
    kind: 'http', baseUrlEnv: 'CRM_BASE_URL',
    routes: { upsert: { method: 'PUT', path: '/{type}s/{id}' }, delete: { method: 'DELETE', path: '/{type}s/{id}' } },
    // read one record back: after an ambiguous attempt (did it land?) and for reconcile
    lookup: { path: '/{type}s/{id}', fieldsField: 'fields' },
    auth: { kind: 'api-key', header: 'x-api-key', env: 'CRM_API_KEY' },
    rateLimit: { ratePerSec: 50, burst: 20 }, // what the CRM's plan allows; 429s slow it further
    retry: { initialDelayMs: 500, maxAttempts: 8, attemptTimeoutMs: 5_000 },
    ordering: 'strict', // a contact's versions must land in order
    dependencies: { waitMs: 60_000 }, // an order waits up to a minute for its contact, then is dead-lettered naming it
  },
});

/** A warehouse: only orders with something to ship. */
export const warehouse = defineConnector({
  name: 'warehouse',
  description: 'demo warehouse: shipments for orders',
  subscribes: [
    { type: 'order.created', filter: (d) => Array.isArray(d.items) && d.items.length > 0,
      map: (d, e) => ({ action: 'upsert', target: { type: 'shipment', id: e.entity.id }, fields: { orderId: e.entity.id, items: d.items } }) },
  ],
  delivery: {
    kind: 'http', baseUrlEnv: 'WAREHOUSE_BASE_URL',
    routes: { upsert: { method: 'PUT', path: '/{type}s/{id}' } },
    lookup: { path: '/{type}s/{id}', fieldsField: 'fields' },
    // OAuth2 client credentials when a token endpoint is configured (the sandbox has one under npm start)
    auth: process.env.WAREHOUSE_TOKEN_URL
      ? { kind: 'oauth2-client-credentials', tokenUrlEnv: 'WAREHOUSE_TOKEN_URL', clientIdEnv: 'WAREHOUSE_CLIENT_ID', clientSecretEnv: 'WAREHOUSE_CLIENT_SECRET' }
      : { kind: 'none' },
    retry: { kind: 'schedule', delaysMs: [1_000, 5_000, 30_000, 120_000], attemptTimeoutMs: 5_000 },
    ordering: 'latest', // only the newest shipment request matters
  },
});

export const demoConnectors = checkConnectors([crm, warehouse]);
// every subscription has a schema: checked here, at start-up
for (const c of demoConnectors) defineConnector(c, demoSchemas);
