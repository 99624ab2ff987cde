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
    ...(['customer.created', 'customer.updated'] as const).map((type) => ({
      type, source: 'stripe',
      map: (d: Record<string, unknown>) => {
        const c = (d as Stripe).data.object;
        return { action: 'upsert', target: { type: 'contact', id: `stripe-${c.id}` }, fields: { email: c.email ?? undefined, name: c.name ?? undefined } };
      },
    })),
    { type: 'order.created', map: (d, e) => ({ action: 'upsert', target: { type: 'order', id: e.entity.id },
      fields: { contactId: d.contactId, total: d.total, currency: d.currency, stage: 'new' } }) },
  ],
  // the CRM's people maintain these; an update from the bus must never overwrite them
  ownership: { targetOwned: ['leadScore', 'accountManager', 'stage'] },
  delivery: { ordering: 'strict' },
});

/** A warehouse: only orders with something to ship. */
export const warehouse = defineConnector({
  name: 'warehouse',
  description: 'demo warehouse: shipments for orders',
  subscribes: [
    { type: 'order.created', filter: (d) => Array.isArray(d.items) && d.items.length > 0,
      map: (d, e) => ({ action: 'upsert', target: { type: 'shipment', id: e.entity.id }, fields: { orderId: e.entity.id, items: d.items } }) },
  ],
  delivery: { ordering: 'latest' },
});

export const demoConnectors = checkConnectors([crm, warehouse]);
// every subscription has a schema: checked here, at start-up
for (const c of demoConnectors) defineConnector(c, demoSchemas);
