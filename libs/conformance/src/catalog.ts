// The conformance kit's own catalog (BUS_CATALOG=libs/conformance/dist/catalog.js): the demo
// crm's shape with test timings, so a scenario takes seconds. Also an example of a catalog
// module a connector author writes.
import { ContactUpdated } from '@bus/catalog';
import { type ConnectorDefinition, defineConnector, SchemaRegistry } from '@bus/connectors';
import { contactProfile, type ConformanceProfile } from './profile.js';
import type { AnySource } from '@bus/intake';

export const schemas = new SchemaRegistry().add('contact.updated', 1, ContactUpdated);

/**
 * How long a strict gap is waited for: short, so "paused / down longer than the gap wait" takes
 * seconds. CHAOS_GAP_WAIT_MS overrides it (read by every process that loads this module, so the
 * runner and the services agree), e.g. 60000 to see the other invariants without gap expiries.
 */
export const GAP_WAIT_MS = Number(process.env.CHAOS_GAP_WAIT_MS || 3_000);
/** One attempt's timeout: a hung call costs this long. */
export const ATTEMPT_TIMEOUT_MS = 1_000;

const delivery = (ordering: 'strict' | 'latest', baseUrlEnv: string) => ({
  kind: 'http',
  baseUrlEnv,
  routes: { upsert: { method: 'PUT', path: '/{type}s/{id}' }, delete: { method: 'DELETE', path: '/{type}s/{id}' } },
  lookup: { path: '/{type}s/{id}', fieldsField: 'fields' },
  auth: { kind: 'api-key', header: 'x-api-key', env: 'CRM_API_KEY' },
  // 8 attempts against at most 3 injected failures per key: retries alone never run out
  retry: { initialDelayMs: 100, maxDelayMs: 1_000, maxAttempts: 8, attemptTimeoutMs: ATTEMPT_TIMEOUT_MS },
  // opens on a run of failures like the demo's, but probes again after a second, not thirty
  breaker: { failureThreshold: 5, openMs: 1_000 },
  gapWaitMs: GAP_WAIT_MS,
  ordering,
});

const contactToCrm = { type: 'contact.updated', map: (d: Record<string, unknown>) => ({ action: 'upsert', target: { type: 'contact', id: String(d.id) }, fields: { email: d.email, name: d.name } }) };

/** crm as in the demo (strict, lookup, API key) with test timings. */
export const crm = defineConnector({
  name: 'crm', description: 'conformance: the demo crm with test timings', subscribes: [contactToCrm], delivery: delivery('strict', 'CRM_BASE_URL'),
} as ConnectorDefinition, schemas);

/** The same contacts to a second target under `latest` ordering. */
export const crmLatest = defineConnector({
  name: 'crm-latest', description: 'conformance: the demo crm with latest ordering', subscribes: [contactToCrm], delivery: delivery('latest', 'CRM_LATEST_BASE_URL'),
} as ConnectorDefinition, schemas);

export const connectors = [crm, crmLatest];
/** Events come through POST /events only: no webhook sources. */
export const sources: AnySource[] = [];
/** What the runner posts (the default profile). */
export const conformance: ConformanceProfile = contactProfile;
