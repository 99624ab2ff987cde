import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** How the target answers one call. */
export type TargetBehaviour =
  | { status: number; headers?: Record<string, string>; body?: unknown }
  /** Apply the request (a business outcome happens), then never answer: the caller times out. */
  | { applyThenHang: true }
  /** Never answer and apply nothing: the caller times out not knowing. */
  | { hang: true };

export interface TargetCall {
  method: string;
  path: string;
  idempotencyKey?: string;
  headers: Record<string, string | string[] | undefined>;
  body: unknown;
  at: number;
}

/**
 * A loopback HTTP target for delivery tests. It records every call, answers from a script
 * (then `fallback`, default 200), and applies each idempotency key once — like a target
 * that honours Idempotency-Key — so `outcomes` counts business outcomes, not calls.
 * An applied body with a `version` is kept as the record at its path, and a GET of that
 * path answers it (404 when absent) without using the script: lookups read real state.
 */
export async function startTarget(opts: { idempotencyHeader?: string; fallback?: TargetBehaviour } = {}) {
  const header = (opts.idempotencyHeader ?? 'Idempotency-Key').toLowerCase();
  const calls: TargetCall[] = [];
  const outcomes = new Map<string, unknown>();
  const records = new Map<string, { version: number; fields: unknown }>();
  const script: TargetBehaviour[] = [];
  let fallback: TargetBehaviour = opts.fallback ?? { status: 200 };
  const hanging = new Set<ServerResponse>();

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let raw = '';
    req.on('data', (c: Buffer) => (raw += c.toString()));
    req.on('end', () => {
      let body: unknown = raw;
      try {
        body = raw ? JSON.parse(raw) : undefined;
      } catch {
        // keep the raw text
      }
      const key = req.headers[header] as string | undefined;
      if (req.method === 'GET') {
        calls.push({ method: 'GET', path: req.url ?? '', headers: req.headers, body: undefined, at: Date.now() });
        const record = records.get(req.url ?? '');
        res.writeHead(record ? 200 : 404, { 'content-type': 'application/json' });
        res.end(JSON.stringify(record ?? { error: 'not found' }));
        return;
      }
      calls.push({ method: req.method ?? '', path: req.url ?? '', idempotencyKey: key, headers: req.headers, body, at: Date.now() });
      const b = script.shift() ?? fallback;
      const apply = () => {
        if (outcomes.has(key ?? `no-key-${calls.length}`)) return;
        outcomes.set(key ?? `no-key-${calls.length}`, body);
        const b = body as { version?: unknown; fields?: unknown } | undefined;
        if (typeof b?.version === 'number') records.set(req.url ?? '', { version: b.version, fields: b.fields });
      };
      if ('applyThenHang' in b || 'hang' in b) {
        if ('applyThenHang' in b) apply();
        hanging.add(res);
        return;
      }
      if (b.status >= 200 && b.status < 300) apply();
      res.writeHead(b.status, { 'content-type': 'application/json', ...b.headers });
      res.end(JSON.stringify(b.body ?? { ok: b.status < 300 }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    calls,
    /** Idempotency key → the body that was applied for it: one entry per business outcome. */
    outcomes,
    /** Path → the record last applied there (`{version, fields}`), as a GET answers it. */
    records,
    /** The next calls answer like this, in order. */
    script(...behaviours: TargetBehaviour[]) {
      script.push(...behaviours);
    },
    /** From now on, unscripted calls answer like this. */
    respondWith(b: TargetBehaviour) {
      fallback = b;
    },
    async close() {
      for (const r of hanging) r.destroy();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
export type TestTarget = Awaited<ReturnType<typeof startTarget>>;
