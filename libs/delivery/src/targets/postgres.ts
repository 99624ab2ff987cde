import type { DeliveryCommand } from '@bus/connectors';
import type { FailureClass } from '@bus/errors';
import pg from 'pg';
import { z } from 'zod';
import { type CallResult, elapsedMs, type Target, TargetReadError, type TargetRecord } from '../target.js';

const EnvName = z.string().regex(/^[A-Z][A-Z0-9_]*$/, 'must name an environment variable');
const IDENT = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;
const Ident = z.string().regex(IDENT, 'must be a plain SQL identifier: a letter or _, then letters, digits or _; at most 63 in all');

/** Where one target type lives. Identifiers are always quoted in SQL, so they are case-sensitive. */
const TableSettings = z.object({
  table: Ident,
  /** The key column (cmd.target.id); needs a primary key or unique index for ON CONFLICT. Default `id`. */
  keyColumn: Ident.default('id'),
  /** The entity version the row was written from: the guard compares it. Default `version`. */
  versionColumn: Ident.default('version'),
  /** field → column; a field not named here goes to the column of its own name. */
  columns: z.record(z.string(), Ident).optional(),
  /** Optional: records the id of the event the row was last written from. */
  eventIdColumn: Ident.optional(),
}).superRefine((t, ctx) => {
  const reserved = [t.keyColumn, t.versionColumn, ...(t.eventIdColumn ? [t.eventIdColumn] : [])];
  if (new Set(reserved).size < reserved.length) ctx.addIssue({ code: 'custom', message: 'keyColumn, versionColumn and eventIdColumn must be three different columns' });
  const seen = new Map<string, string>();
  for (const [field, column] of Object.entries(t.columns ?? {})) {
    if (reserved.includes(column)) ctx.addIssue({ code: 'custom', path: ['columns', field], message: `maps to "${column}", the key, version or event id column` });
    else if (seen.has(column)) ctx.addIssue({ code: 'custom', path: ['columns', field], message: `maps to "${column}", already the column of field "${seen.get(column)}"` });
    seen.set(column, field);
  }
});
type TableSettings = z.infer<typeof TableSettings>;

/** A PostgreSQL table per target type, written by upsert with a version guard. */
export const PostgresTargetSettings = z.object({
  kind: z.literal('postgres'),
  /** Environment variable with the connection string (`postgres://user:pass@host:5432/db`); never logged. */
  urlEnv: EnvName,
  /** Schema of every table; default: the connection's search_path. */
  schema: Ident.optional(),
  /** Target type (cmd.target.type) → its table. */
  tables: z.record(z.string(), TableSettings).refine((t) => Object.keys(t).length > 0, 'must map at least one target type'),
  /** Connections at most. Default 10. */
  poolSize: z.number().int().min(1).max(100).default(10),
});
export type PostgresTargetSettings = z.infer<typeof PostgresTargetSettings>;

/** SQLSTATE → class; checked before the two-character classes below. */
const byCode: Record<string, FailureClass> = {
  '57014': 'ambiguous', // query_canceled (our statement_timeout): treated like a lost answer, so the next attempt looks first
  '40001': 'transient', '40P01': 'transient', // serialization failure, deadlock: rolled back, try again
  '55P03': 'transient', // lock_not_available
  '57P01': 'transient', '57P02': 'transient', '57P03': 'transient', // server shutting down, crashed, starting up
};
const byClass: Record<string, FailureClass> = {
  '22': 'business', '23': 'business', // data exception; integrity constraint (not-null, check, unique, FK): this command's data
  '28': 'permanent', '3D': 'permanent', '3F': 'permanent', '42': 'permanent', '0A': 'permanent', // auth, database, schema, table/column/privilege, unsupported: a person fixes the config
  '53': 'transient', '58': 'transient', XX: 'transient', // resources, system, internal
};

/**
 * The class of a failed statement. `code` is the SQLSTATE when the server answered, else
 * undefined (socket error, our timeout); `sent` says whether the statement had gone out.
 * No answer after sending → ambiguous; before → transient. An answer not listed is
 * transient: the server refused this once, and attempts are bounded.
 */
export function classifyPgError(code: string | undefined, sent: boolean): FailureClass {
  if (code === undefined || !/^[0-9A-Z]{5}$/.test(code) || code.startsWith('08')) return sent ? 'ambiguous' : 'transient';
  return byCode[code] ?? byClass[code.slice(0, 2)] ?? 'transient';
}

const q = (ident: string) => `"${ident.replaceAll('"', '""')}"`;
class Timeout extends Error {}
/** A statement that failed; `sent`: it had gone to the server. */
class PgFailure extends Error {
  constructor(readonly sent: boolean, readonly err: unknown) {
    const code = err instanceof pg.DatabaseError ? err.code : undefined;
    const text = (err instanceof Error ? err.message : String(err)).slice(0, 300);
    super(code ? `PostgreSQL error ${code}: ${text}` : `${text} (${sent ? 'sent; its outcome is unknown' : 'not sent'})`);
  }
  get failureClass(): FailureClass {
    return classifyPgError(this.err instanceof pg.DatabaseError ? this.err.code : undefined, this.sent);
  }
}

function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Timeout(`${what} within ${Math.round(ms)} ms`)), Math.max(0, ms));
    p.then((v) => { clearTimeout(timer); resolve(v); }, (e: unknown) => { clearTimeout(timer); reject(e); });
  });
}

/**
 * PostgreSQL: `upsert` is INSERT … ON CONFLICT (key) DO UPDATE of the command's fields
 * only, when the row's version is older than the command's; `delete` removes the row when
 * its version is not newer. An equal or newer row is kept and the attempt succeeds.
 */
export function createPostgresTarget(s: PostgresTargetSettings, env: NodeJS.ProcessEnv, missing: (what: string) => Error): Target {
  const url = env[s.urlEnv];
  if (!url) throw missing(s.urlEnv);
  if (!/^postgres(ql)?:\/\//.test(url) || !URL.canParse(url)) throw missing(`${s.urlEnv} to a postgres://user@host:port/database connection string`);
  // connectionTimeoutMillis only bounds a connect an attempt gave up on (each attempt has its own deadline)
  const pool = new pg.Pool({ connectionString: url, max: s.poolSize, connectionTimeoutMillis: 10_000, idleTimeoutMillis: 30_000, application_name: 'bus-deliver' });
  pool.on('error', () => {}); // an idle connection the server dropped: the pool discards it, the next attempt connects anew
  const timeoutSet = new WeakMap<pg.PoolClient, number>();
  let closed = false;

  /** One statement, connect included, within timeoutMs. The server cancels it a little before (statement_timeout), so it never runs on unseen. */
  async function query(text: string, values: unknown[], timeoutMs: number): Promise<Record<string, unknown>[]> {
    const deadline = performance.now() + timeoutMs;
    const connecting = pool.connect();
    let client: pg.PoolClient;
    try {
      client = await within(connecting, timeoutMs, 'no connection');
    } catch (err) {
      if (err instanceof Timeout) connecting.then((c) => c.release(), () => {}); // came too late: back to the pool
      throw new PgFailure(false, err);
    }
    const ignore = () => {}; // a connection lost mid-statement also rejects the statement, handled below
    client.on('error', ignore);
    let sent = false;
    let broken: Error | undefined;
    try {
      const statementMs = Math.max(1, timeoutMs - Math.min(1_000, Math.floor(timeoutMs / 5)));
      if (timeoutSet.get(client) !== statementMs) {
        await within(client.query(`SET statement_timeout = ${statementMs}`), deadline - performance.now(), 'no answer');
        timeoutSet.set(client, statementMs);
      }
      sent = true;
      return (await within(client.query(text, values), deadline - performance.now(), 'no answer')).rows;
    } catch (err) {
      if (!(err instanceof pg.DatabaseError)) broken = err instanceof Error ? err : new Error(String(err)); // state unknown: never reuse it (plain: kept for pg's pool, never thrown to a caller)
      throw new PgFailure(sent, err);
    } finally {
      if (!broken) client.off('error', ignore);
      client.release(broken);
    }
  }

  const tableOf = (type: string): TableSettings | undefined => (Object.hasOwn(s.tables, type) ? s.tables[type] : undefined);
  const nameOf = (t: TableSettings) => (s.schema ? `${q(s.schema)}.${q(t.table)}` : q(t.table));
  const noTable = (type: string) => `the connector has no table for target type "${type}"; add it to delivery.tables`;

  /** The statement for an upsert, or why the command cannot be written (a mapping to fix). */
  function upsert(t: TableSettings, cmd: DeliveryCommand): { text: string; values: unknown[] } | string {
    const cols = [t.keyColumn, t.versionColumn, ...(t.eventIdColumn ? [t.eventIdColumn] : [])];
    const values: unknown[] = [cmd.target.id, cmd.version, ...(t.eventIdColumn ? [cmd.event.id] : [])];
    const reserved = cols.length;
    for (const [field, value] of Object.entries(cmd.fields)) {
      const column = t.columns?.[field] ?? field;
      const fix = `map it to a column in delivery.tables.${cmd.target.type}.columns`;
      if (!IDENT.test(column)) return `field "${field}" is not a plain column name; ${fix}`;
      const at = cols.indexOf(column);
      if (at >= 0) return `field "${field}" would write column "${column}", ${at < reserved ? 'the key, version or event id' : 'already written from another field'}; ${fix}`;
      cols.push(column);
      values.push(value);
    }
    const table = nameOf(t);
    const [key, version] = [q(t.keyColumn), q(t.versionColumn)];
    const set = cols.slice(1).map((c) => `${q(c)} = EXCLUDED.${q(c)}`).join(', ');
    // the outer SELECT sees the table as it was before the INSERT: `current` is the version found
    const text = `WITH w AS (INSERT INTO ${table} AS cur (${cols.map(q).join(', ')}) VALUES (${cols.map((_, i) => `$${i + 1}`).join(', ')}) ` +
      `ON CONFLICT (${key}) DO UPDATE SET ${set} WHERE cur.${version} ${cmd.repair ? '<=' : '<'} EXCLUDED.${version} RETURNING 1) ` +
      `SELECT (SELECT count(*) FROM w)::int AS done, (SELECT ${version} FROM ${table} WHERE ${key} = $1) AS current`;
    return { text, values };
  }

  function remove(t: TableSettings, cmd: DeliveryCommand) {
    const [table, key, version] = [nameOf(t), q(t.keyColumn), q(t.versionColumn)];
    const text = `WITH d AS (DELETE FROM ${table} WHERE ${key} = $1 AND ${version} <= $2 RETURNING 1) ` +
      `SELECT (SELECT count(*) FROM d)::int AS done, (SELECT ${version} FROM ${table} WHERE ${key} = $1) AS current`;
    return { text, values: [cmd.target.id, cmd.version] };
  }

  function outcome(cmd: DeliveryCommand, done: boolean, current: number | undefined): string {
    const v = cmd.version;
    if (cmd.action === 'delete') {
      if (done) return `deleted (it had version ${current})`;
      return current === undefined ? 'nothing to delete: no row' : `kept: the row has version ${current}, newer than this delete (${v})`;
    }
    if (done) return current === undefined ? `inserted at version ${v}` : `updated from version ${current} to ${v}`;
    if (current === undefined) return `kept: a row of version ${v} or newer was written meanwhile; not overwritten`;
    return current === v ? `kept: the row already has version ${v} (applied before)` : `kept: the row has version ${current}, newer than ${v}; not overwritten`;
  }

  /** A row as a record: mapped columns under their field names, key, version and event id left out. */
  function toRecord(t: TableSettings, type: string, row: Record<string, unknown>): TargetRecord {
    const fieldOf = new Map(Object.entries(t.columns ?? {}).map(([field, column]) => [column, field]));
    const fields: Record<string, unknown> = {};
    for (const [column, value] of Object.entries(row)) {
      if (column === t.keyColumn || column === t.versionColumn || column === t.eventIdColumn) continue;
      const field = fieldOf.get(column);
      if (field === undefined && t.columns?.[column] !== undefined) continue; // that field lives in another column
      fields[field ?? column] = value;
    }
    return { key: { type, id: String(row[t.keyColumn]) }, version: Number(row[t.versionColumn]), fields };
  }

  async function read(what: string, text: string, values: unknown[], timeoutMs: number) {
    try {
      return await query(text, values, timeoutMs);
    } catch (err) {
      if (!(err instanceof PgFailure)) throw err;
      throw new TargetReadError(err.failureClass === 'ambiguous' ? 'transient' : err.failureClass, `${what}: ${err.message}`);
    }
  }

  return {
    kind: 'postgres',
    async apply(cmd, o): Promise<CallResult> {
      const started = performance.now();
      const result = (failureClass: FailureClass | 'ok', detail: string): CallResult => ({ ok: failureClass === 'ok', failureClass, detail, durationMs: elapsedMs(started) });
      const t = tableOf(cmd.target.type);
      if (!t) return result('permanent', noTable(cmd.target.type));
      if (cmd.action !== 'upsert' && cmd.action !== 'delete') return result('permanent', `the postgres target knows the actions upsert and delete, not "${cmd.action}"`);
      const statement = cmd.action === 'upsert' ? upsert(t, cmd) : remove(t, cmd);
      if (typeof statement === 'string') return result('permanent', statement);
      try {
        const [row] = await query(statement.text, statement.values, o.timeoutMs);
        const current = row?.current === null || row?.current === undefined ? undefined : Number(row.current);
        return result('ok', outcome(cmd, row?.done === 1, current));
      } catch (err) {
        if (!(err instanceof PgFailure)) throw err;
        return result(err.failureClass, err.message);
      }
    },
    async lookup(key, o) {
      const t = tableOf(key.type);
      if (!t) throw new TargetReadError('permanent', `lookup of ${key.type} ${key.id}: ${noTable(key.type)}`);
      const rows = await read(`lookup of ${key.type} ${key.id}`, `SELECT * FROM ${nameOf(t)} WHERE ${q(t.keyColumn)} = $1`, [key.id], o.timeoutMs);
      return rows[0] && toRecord(t, key.type, rows[0]);
    },
    async lookupMany(type, ids, o) {
      const t = tableOf(type);
      if (!t) throw new TargetReadError('permanent', `lookup of ${ids.length} ${type}: ${noTable(type)}`);
      const rows = await read(`lookup of ${ids.length} ${type}`, `SELECT * FROM ${nameOf(t)} WHERE ${q(t.keyColumn)} = ANY($1)`, [ids], o.timeoutMs);
      return rows.map((r) => toRecord(t, type, r));
    },
    async list(type, page, o) {
      const t = tableOf(type);
      if (!t) throw new TargetReadError('permanent', `list of ${type}: ${noTable(type)}`);
      if (!Number.isSafeInteger(page.limit) || page.limit < 1) throw new TargetReadError('permanent', `list of ${type}: limit must be a whole number ≥ 1, not ${page.limit}`);
      const key = q(t.keyColumn);
      // keyset pagination: one index range per page, however deep; one row more tells whether a next page exists
      const rows = page.after === undefined
        ? await read(`list of ${type}`, `SELECT * FROM ${nameOf(t)} ORDER BY ${key} LIMIT $1`, [page.limit + 1], o.timeoutMs)
        : await read(`list of ${type} after ${page.after}`, `SELECT * FROM ${nameOf(t)} WHERE ${key} > $2 ORDER BY ${key} LIMIT $1`, [page.limit + 1, page.after], o.timeoutMs);
      const records = rows.slice(0, page.limit).map((r) => toRecord(t, type, r));
      return rows.length > page.limit ? { records, next: records.at(-1)!.key.id } : { records };
    },
    async close() {
      if (closed) return;
      closed = true;
      await pool.end();
    },
  };
}
