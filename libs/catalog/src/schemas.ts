// Event schemas of the demo: what the demo sources send, per type and version.
import { SchemaRegistry } from '@bus/connectors';
import { z } from 'zod';

/** Standard Webhooks demo and the organisation's services: contacts and orders. */
export const ContactUpdated = z.object({
  id: z.string().min(1),
  version: z.number().int().min(1),
  email: z.email(),
  name: z.string().optional(),
  phone: z.string().optional(),
});

export const OrderCreated = z.object({
  id: z.string().min(1).optional(),
  version: z.number().int().optional(),
  contactId: z.string().optional(),
  total: z.number().nonnegative(),
  currency: z.string().length(3).default('EUR'),
  items: z.array(z.object({ sku: z.string(), quantity: z.number().int().positive() })).default([]),
});

/** Stripe sends whole events; loose, because Stripe adds fields all the time and that is not our drift. */
export const StripeCustomerEvent = z.looseObject({
  id: z.string(),
  type: z.string(),
  created: z.number().int(),
  data: z.looseObject({
    object: z.looseObject({ id: z.string(), email: z.string().nullish(), name: z.string().nullish() }),
  }),
});

export const demoSchemas = new SchemaRegistry()
  .add('contact.updated', 1, ContactUpdated)
  .add('order.created', 1, OrderCreated)
  .add('customer.created', 1, StripeCustomerEvent)
  .add('customer.updated', 1, StripeCustomerEvent);
