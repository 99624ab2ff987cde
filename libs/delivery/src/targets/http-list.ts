import { z } from 'zod';
import { type CallOptions, TargetReadError, type TargetPage, type TargetRecord } from '../target.js';
import { sendHttp } from './send.js';

const Param = z.string().regex(/^[A-Za-z0-9_.[\]-]+$/, 'must be a plain query parameter name');

/**
 * How an HTTP target lists its records of one type, a page at a time in a stable order (what
 * reconcile's phase 2 reads to find records no source explains). `GET <path>?<limitParam>=N`
 * and then, for the next page:
 * - `keyset`: `&<afterParam>=<the last record's id>` — the target answers the records after
 *   that id in id order; a page shorter than the limit is the last;
 * - `cursor`: `&<cursorParam>=<the answer's cursor at nextField>` — an opaque cursor; no cursor
 *   (absent, null, empty) is the last page.
 */
export const HttpListRoute = z.object({
  /** GET path; `{type}` is the target type. */
  path: z.string().startsWith('/'),
  paging: z.discriminatedUnion('kind', [
    z.object({ kind: z.literal('keyset'), afterParam: Param.default('after'), limitParam: Param.default('limit') }),
    z.object({ kind: z.literal('cursor'), cursorParam: Param.default('cursor'), limitParam: Param.default('limit'), nextField: z.string().default('next') }),
  ]),
  /** Dotted path of the array of records in the answer. Default `records`; `''` = the answer is the array. */
  recordsField: z.string().default('records'),
  /** In each record, dotted paths of its id (default `id`), its version (default `version`) and its fields (default the whole record). */
  idField: z.string().default('id'),
  versionField: z.string().default('version'),
  fieldsField: z.string().optional(),
});
export type HttpListRoute = z.infer<typeof HttpListRoute>;

const at = (value: unknown, path: string | undefined): unknown =>
  path === undefined || path === '' ? value : path.split('.').reduce<unknown>((v, k) => (v && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined), value);

/**
 * The `list` of an HTTP target from its `list` route. Reads throw a TargetReadError: 429 and
 * 5xx transient, a timeout transient too (a GET changes nothing), an answer that does not
 * have the declared shape permanent, naming the setting to fix.
 */
export function httpList(route: HttpListRoute, o: { baseUrl: string; headers: Record<string, string>; fetchFn?: typeof fetch }) {
  return async (type: string, page: { after?: string; limit: number }, c: CallOptions): Promise<TargetPage> => {
    const p = route.paging;
    const url = new URL(`${o.baseUrl}${route.path.replaceAll('{type}', encodeURIComponent(type))}`);
    url.searchParams.set(p.limitParam, String(page.limit));
    if (page.after !== undefined) url.searchParams.set(p.kind === 'keyset' ? p.afterParam : p.cursorParam, page.after);
    const what = `listing ${type} at ${url.pathname}`;
    const r = await sendHttp({ url: url.toString(), method: 'GET', headers: { accept: 'application/json', ...o.headers, ...c.headers } }, c.timeoutMs, o.fetchFn);
    if (!r.ok) throw new TargetReadError(r.failureClass === 'ok' || r.failureClass === 'ambiguous' ? 'transient' : r.failureClass, `${what}: ${r.detail}`, r.status);
    let answer: unknown;
    try {
      answer = JSON.parse(r.body ?? '');
    } catch {
      throw new TargetReadError('permanent', `${what}: the answer is not JSON; check the connector's list.path`);
    }
    const list = at(answer, route.recordsField);
    if (!Array.isArray(list)) throw new TargetReadError('permanent', `${what}: no array at "${route.recordsField}"; check the connector's list.recordsField`);
    const records: TargetRecord[] = list.map((item, i) => {
      const id = at(item, route.idField);
      const version = Number(at(item, route.versionField));
      if ((typeof id !== 'string' && typeof id !== 'number') || String(id) === '') throw new TargetReadError('permanent', `${what}: record ${i} has no id at "${route.idField}"; check the connector's list.idField`);
      if (!Number.isSafeInteger(version)) throw new TargetReadError('permanent', `${what}: record ${String(id)} has no whole number at "${route.versionField}"; check the connector's list.versionField`);
      const fields = at(item, route.fieldsField);
      return { key: { type, id: String(id) }, version, fields: fields && typeof fields === 'object' ? (fields as Record<string, unknown>) : {} };
    });
    if (p.kind === 'keyset') return { records, ...(records.length >= page.limit ? { next: records.at(-1)!.key.id } : {}) };
    const next = at(answer, p.nextField);
    return { records, ...(typeof next === 'string' && next !== '' ? { next } : typeof next === 'number' ? { next: String(next) } : {}) };
  };
}
