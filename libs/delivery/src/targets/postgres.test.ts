import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { defineConnector } from '@bus/connectors';
import type { FailureClass } from '@bus/errors';
import { resolveDelivery } from '../settings.js';
import { classifyPgError } from './postgres.js';

describe('postgres target: failure classes from PostgreSQL error codes', () => {
  const table: [code: string | undefined, sent: boolean, expected: FailureClass, what: string][] = [
    [undefined, false, 'transient', 'connection refused, pool connect failure or timeout: nothing was sent'],
    [undefined, true, 'ambiguous', 'connection lost or our timeout after sending: the outcome is unknown'],
    ['ECONNRESET', true, 'ambiguous', 'a socket error code is not a SQLSTATE'],
    ['08006', false, 'transient', 'connection failure while connecting'],
    ['08006', true, 'ambiguous', 'connection failure after sending'],
    ['57014', true, 'ambiguous', 'statement_timeout cancelled the statement'],
    ['23502', true, 'business', 'not-null violation'],
    ['23514', true, 'business', 'check violation'],
    ['23503', true, 'business', 'foreign-key violation'],
    ['23505', true, 'business', 'unique violation'],
    ['22P02', true, 'business', 'invalid text representation'],
    ['22001', true, 'business', 'value too long'],
    ['42P01', true, 'permanent', 'undefined table'],
    ['42703', true, 'permanent', 'undefined column'],
    ['42501', true, 'permanent', 'insufficient privilege'],
    ['42P10', true, 'permanent', 'no unique index for ON CONFLICT'],
    ['28P01', false, 'permanent', 'password authentication failed'],
    ['28000', false, 'permanent', 'no pg_hba entry'],
    ['3D000', false, 'permanent', 'database does not exist'],
    ['3F000', true, 'permanent', 'schema does not exist'],
    ['40001', true, 'transient', 'serialization failure'],
    ['40P01', true, 'transient', 'deadlock detected'],
    ['53300', false, 'transient', 'too many connections'],
    ['53100', true, 'transient', 'disk full'],
    ['57P01', true, 'transient', 'admin shutdown'],
    ['57P03', false, 'transient', 'cannot connect now (starting up)'],
    ['55P03', true, 'transient', 'lock not available'],
    ['P0001', true, 'transient', 'an answer not listed: bounded retries, then the DLQ'],
  ];
  for (const [code, sent, expected, what] of table) {
    it(`${code ?? 'no code'}${sent ? ' after sending' : ' before sending'} → ${expected} (${what})`, () => {
      assert.equal(classifyPgError(code, sent), expected);
    });
  }
});

describe('postgres target: settings checked at start-up', () => {
  const env = { CRM_PG_URL: 'postgres://postgres@127.0.0.1:5432/test' };
  const resolve = (delivery: Record<string, unknown>, e: NodeJS.ProcessEnv = env) =>
    resolveDelivery(defineConnector({ name: 'crm-db', subscribes: [{ type: 'contact.updated', map: () => null }], delivery: { kind: 'postgres', urlEnv: 'CRM_PG_URL', ...delivery } }), e);

  it('defaults: key column id, version column version, pool of 10', async () => {
    const d = resolve({ tables: { contact: { table: 'contacts' } } });
    assert.equal(d.target.kind, 'postgres');
    assert.deepEqual(d.settings.kind === 'postgres' && [d.settings.tables['contact'], d.settings.poolSize], [{ table: 'contacts', keyColumn: 'id', versionColumn: 'version' }, 10]);
    await d.target.close?.();
  });

  it('an identifier that is not plain → ConfigError naming the connector and the field', () => {
    assert.throws(() => resolve({ tables: { contact: { table: 'contacts"; drop table x; --' } } }), (err: Error) =>
      err.name === 'ConfigError' && /connector "crm-db"/.test(err.message) && /tables\.contact\.table: must be a plain SQL identifier/.test(err.message));
    assert.throws(() => resolve({ schema: 'my schema', tables: { contact: { table: 'contacts' } } }), /schema: must be a plain SQL identifier/);
    assert.throws(() => resolve({ tables: { contact: { table: 'contacts', columns: { name: 'full name' } } } }), /tables\.contact\.columns\.name: must be a plain SQL identifier/);
  });

  it('a field mapped onto the key or version column, or two fields onto one column → ConfigError', () => {
    assert.throws(() => resolve({ tables: { contact: { table: 'contacts', columns: { rev: 'version' } } } }), /tables\.contact\.columns\.rev: maps to "version", the key, version or event id column/);
    assert.throws(() => resolve({ tables: { contact: { table: 'contacts', columns: { a: 'x', b: 'x' } } } }), /columns\.b: maps to "x", already the column of field "a"/);
    assert.throws(() => resolve({ tables: {} }), /tables: must map at least one target type/);
  });

  it('the connection string missing or not a postgres:// URL → ConfigError that never shows the value', () => {
    assert.throws(() => resolve({ tables: { contact: { table: 'contacts' } } }, {}), /connector "crm-db" delivery: set CRM_PG_URL/);
    assert.throws(() => resolve({ tables: { contact: { table: 'contacts' } } }, { CRM_PG_URL: 'host=db password=hunter2' }), (err: Error) =>
      /set CRM_PG_URL to a postgres:\/\/.*connection string/.test(err.message) && !err.message.includes('hunter2'));
  });
});
