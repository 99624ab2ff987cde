// What the reconcile bench compares: N contacts from the `standard` source, each one
// `contact.updated` event, and a PostgreSQL table that holds them — with a known share of
// differences planted, so the run does real work and its counts can be checked.
import { defineConnector } from '@bus/connectors';

export const SOURCE = 'standard'; // the demo catalog's contact.updated schema (demoSchemas) validates these
export const CONNECTOR = 'pgbench';

/** The connector under test: contacts into `<schema>.contacts`; the target owns lead_score (never reported). */
export function benchConnector(schema: string) {
  return defineConnector({
    name: CONNECTOR,
    subscribes: [{ type: 'contact.updated', source: SOURCE,
      map: (d) => ({ action: 'upsert', target: { type: 'contact', id: String(d.id) }, fields: { email: d.email, name: d.name, phone: d.phone } }) }],
    ownership: { targetOwned: ['leadScore'] },
    delivery: { kind: 'postgres', urlEnv: 'PG_URL', schema, tables: { contact: { table: 'contacts', columns: { leadScore: 'lead_score' } } }, ordering: 'strict' },
  });
}

export const TABLE_DDL = (schema: string) =>
  `CREATE TABLE "${schema}".contacts (id text PRIMARY KEY, version bigint NOT NULL, email text, name text, phone text, lead_score int)`;

export const contactId = (i: number) => `c${String(i).padStart(7, '0')}`;

/** Entity i's one event: its data, as the source sends it (the catalog's ContactUpdated). */
export function contactData(i: number) {
  return { id: contactId(i), version: 1 + (i % 5), email: `contact${i}@example.com`, name: `Contact ${i}`, phone: `+31 6 ${String(i).padStart(8, '0')}` };
}

/** What the target holds for entity i, or why not: the planted differences. */
export type Plant = 'missing' | 'stale-field' | 'stale-version' | 'target-newer' | undefined;
export function plantOf(i: number): Plant {
  if (i % 100 === 0) return 'missing'; // 1 %: deleted behind the bus's back, or never delivered
  if (i % 200 === 1) return 'stale-field'; // 0.5 %: a source-owned field edited by hand at the target
  if (i % 200 === 101) return 'stale-version'; // 0.5 %: the target has an older version
  if (i % 1000 === 3) return 'target-newer'; // 0.1 %: the target has a newer version than the bus ever saw
  return undefined;
}
/** 0.1 % of N: rows at the target that no source entity maps to. */
export const unknownCount = (n: number) => Math.floor(n / 1000);
export const unknownId = (k: number) => `u${String(k).padStart(7, '0')}`;

/** What a correct run must find, by kind. */
export function planted(n: number): Record<'missing' | 'stale' | 'target-newer' | 'unknown-to-source', number> {
  const c = { missing: 0, stale: 0, 'target-newer': 0, 'unknown-to-source': unknownCount(n) };
  for (let i = 0; i < n; i++) {
    const p = plantOf(i);
    if (p === 'missing') c.missing++;
    else if (p === 'stale-field' || p === 'stale-version') c.stale++;
    else if (p === 'target-newer') c['target-newer']++;
  }
  return c;
}

/** Rows [from, to) of the table as column arrays (for one INSERT … SELECT FROM unnest(…)). */
export function targetRows(n: number, from: number, to: number) {
  const cols = { id: [] as string[], version: [] as number[], email: [] as string[], name: [] as string[], phone: [] as string[], leadScore: [] as number[] };
  const push = (id: string, version: number, email: string, name: string, phone: string, leadScore: number) => {
    cols.id.push(id); cols.version.push(version); cols.email.push(email); cols.name.push(name); cols.phone.push(phone); cols.leadScore.push(leadScore);
  };
  for (let i = from; i < Math.min(to, n); i++) {
    const p = plantOf(i);
    if (p === 'missing') continue;
    const d = contactData(i);
    const version = p === 'stale-version' ? d.version - 1 : p === 'target-newer' ? d.version + 1 : d.version;
    // the CRM scores every contact: a target-owned field the projection never has, so it differs everywhere and is never reported
    push(d.id, Math.max(0, version), p === 'stale-field' ? `edited-by-hand-${i}@example.com` : d.email, d.name, d.phone, i % 100);
  }
  // the unknown rows go with the last chunk
  if (to >= n) for (let k = 0; k < unknownCount(n); k++) push(unknownId(k), 1, `stranger${k}@example.com`, `Stranger ${k}`, '+31 6 00000000', 0);
  return cols;
}
