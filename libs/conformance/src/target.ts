// A target system that behaves like many real ones: it forgets idempotency keys and misbehaves per call.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type FaultMix, faultMix, isFailure, lookupFails, type PutFault, putFault } from './fault-mix.js';

/** One business outcome at the target: a write it applied. */
export interface Apply {
  /** `<type>/<id>` of the target record (the command's `key`). */
  entity: string;
  version: number;
  idempotencyKey?: string;
  action: 'upsert' | 'delete';
  /** Order of applies at this target, from 1. */
  seq: number;
  atMs: number;
}

export interface MisbehavingTargetOptions {
  /** Required. Drives every fault decision (see putFault). */
  seed: number;
  /** Fractions per call; default DEFAULT_FAULT_MIX. */
  faults?: Partial<FaultMix>;
  /** Failed answers per idempotency key before the target behaves; default 3 (below the bus's retry budget). */
  maxFaultsPerKey?: number;
  /** Apply a repeated idempotency key again, as many real systems do. Default true. */
  ignoreIdempotencyKeys?: boolean;
  /** Default `idempotency-key` (case-insensitive). */
  idempotencyHeader?: string;
  /** How long a hung call holds its socket before the target destroys it, ms. Required: longer than the connector's attemptTimeoutMs. */
  hangMs: number;
  /** Delay of a slow answer, ms; default 200 (shorter than any sane attempt timeout). */
  slowMs?: number;
  /** Retry-After of a 429, seconds; default 1. */
  retryAfterSec?: number;
  /** When set, calls without this header value get 401 (a misconfigured run, not a fault). */
  apiKey?: { header: string; value: string };
}

/** A record as a lookup answers it: `{ type, id, version, fields }` (fieldsField `fields`, versionField `version`). */
interface StoredRecord {
  entity: string;
  version: number;
  fields: Record<string, unknown>;
}

const readBody = (req: IncomingMessage) => new Promise<string>((resolve, reject) => {
  let raw = '';
  req.on('data', (c: Buffer) => (raw += c.toString()));
  req.on('end', () => resolve(raw));
  req.on('error', reject);
});

/**
 * An HTTP target for the `http` connector kind on 127.0.0.1 (a free port). Any PUT, POST
 * or PATCH applies the JSON body the http target sends (`{ key: {type, id}, version, fields }`)
 * to the record at that path, DELETE removes it, and GET of the same path answers
 * `{ type, id, version, fields }` or 404 — so a connector whose lookup path is its upsert path
 * looks up what it wrote. Every write is decided by the seeded fault mix; every apply is
 * recorded in order. Newer-over-older is not checked: it applies what it is sent, so the
 * suite sees every ordering mistake.
 */
export async function startMisbehavingTarget(o: MisbehavingTargetOptions) {
  const mix = faultMix(o.faults);
  const maxFaults = o.maxFaultsPerKey ?? 3;
  const header = (o.idempotencyHeader ?? 'idempotency-key').toLowerCase();
  const ignoreKeys = o.ignoreIdempotencyKeys ?? true;
  const applies: Apply[] = [];
  const records = new Map<string, StoredRecord>(); // by path
  const appliedKeys = new Set<string>();
  const attempts = new Map<string, { n: number; faults: number }>();
  const lookups = new Map<string, number>();
  const counts: Record<PutFault | 'lookups' | 'lookupUnavailable' | 'dedupedByKey', number> = {
    ok: 0, unavailable: 0, rateLimited: 0, applyThenHang: 0, hang: 0, slow: 0, lookups: 0, lookupUnavailable: 0, dedupedByKey: 0,
  };
  const timers = new Set<NodeJS.Timeout>();
  let open = 0;
  let lastActivityMs = Date.now();

  const later = (ms: number, fn: () => void) => {
    const t = setTimeout(() => {
      timers.delete(t);
      fn();
    }, ms);
    timers.add(t);
  };
  const json = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    if (res.destroyed) return;
    res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));
  };

  function apply(req: IncomingMessage, path: string, body: { key?: { type?: string; id?: string }; version?: number; fields?: Record<string, unknown> }, key?: string) {
    if (key && !ignoreKeys && appliedKeys.has(key)) return void counts.dedupedByKey++;
    if (key) appliedKeys.add(key);
    const version = Number(body.version ?? req.headers['x-entity-version']);
    const current = records.get(path);
    const entity = body.key?.type && body.key.id ? `${body.key.type}/${body.key.id}` : (current?.entity ?? path);
    const action = req.method === 'DELETE' ? 'delete' : 'upsert';
    applies.push({ entity, version, idempotencyKey: key, action, seq: applies.length + 1, atMs: Date.now() });
    if (action === 'delete') records.delete(path);
    else records.set(path, { entity, version, fields: { ...current?.fields, ...body.fields } });
  }

  async function handle(req: IncomingMessage, res: ServerResponse) {
    const path = (req.url ?? '/').split('?')[0]!;
    const raw = await readBody(req);
    if (o.apiKey && req.headers[o.apiKey.header.toLowerCase()] !== o.apiKey.value) return json(res, 401, { error: `wrong or missing ${o.apiKey.header}` });
    if (req.method === 'GET') {
      const n = (lookups.get(path) ?? 0) + 1;
      lookups.set(path, n);
      counts.lookups++;
      if (lookupFails(mix, o.seed, path, n)) {
        counts.lookupUnavailable++;
        return json(res, 503, { error: 'lookup unavailable (injected)' });
      }
      const r = records.get(path);
      if (!r) return json(res, 404, { error: 'not found' });
      const [type, ...id] = r.entity.split('/');
      return json(res, 200, { type, id: id.join('/'), version: r.version, fields: r.fields });
    }
    let body: Parameters<typeof apply>[2] = {};
    try {
      body = raw ? JSON.parse(raw) : {};
    } catch {
      return json(res, 400, { error: 'body is not JSON' });
    }
    const key = (req.headers[header] as string | undefined) || undefined;
    const tally = attempts.get(key ?? path) ?? { n: 0, faults: 0 };
    attempts.set(key ?? path, tally);
    tally.n++;
    const fault = putFault(mix, o.seed, key ?? path, tally.n, tally.faults, maxFaults);
    if (isFailure(fault)) tally.faults++;
    counts[fault]++;
    switch (fault) {
      case 'unavailable':
        return json(res, 503, { error: 'service unavailable (injected)' });
      case 'rateLimited':
        return json(res, 429, { error: 'rate limited (injected)' }, { 'retry-after': String(o.retryAfterSec ?? 1) });
      case 'applyThenHang':
      case 'hang':
        if (fault === 'applyThenHang') apply(req, path, body, key);
        return later(o.hangMs, () => res.socket?.destroy());
      case 'slow':
        return later(o.slowMs ?? 200, () => {
          apply(req, path, body, key);
          json(res, 200, { status: 'applied', version: body.version });
        });
      default:
        apply(req, path, body, key);
        return json(res, 200, { status: 'applied', version: body.version });
    }
  }

  const server = createServer((req, res) => {
    open++;
    lastActivityMs = Date.now();
    res.once('close', () => {
      open--;
      lastActivityMs = Date.now();
    });
    handle(req, res).catch((err: Error) => json(res, 500, { error: err.message }));
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    /** Every apply, in the order the target applied them. */
    applies,
    /** Current version per entity (`<type>/<id>`); deleted records are absent. */
    state(): Map<string, number> {
      return new Map([...records.values()].map((r) => [r.entity, r.version]));
    },
    /** Calls per decision, lookups, and repeated keys skipped (with ignoreIdempotencyKeys false). */
    counts,
    /** Calls being answered or held right now. */
    open: () => open,
    /** No call open, and none started or ended for `ms`. */
    idleFor: (ms: number) => open === 0 && Date.now() - lastActivityMs >= ms,
    async close(): Promise<void> {
      for (const t of timers) clearTimeout(t);
      timers.clear();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
export type MisbehavingTarget = Awaited<ReturnType<typeof startMisbehavingTarget>>;
