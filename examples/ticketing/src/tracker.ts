// A small issue tracker for the example: the target the `tracker` connector delivers to.
import { createServer, type IncomingMessage, type Server } from 'node:http';

/** An issue as the tracker stores it. */
export interface Issue {
  version: number;
  fields: Record<string, unknown>;
}

export interface Tracker {
  server: Server;
  /** `http://127.0.0.1:<port>` once listening. */
  url: string;
  issues: Map<string, Issue>;
  close(): Promise<void>;
}

async function body(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return chunks.length ? JSON.parse(Buffer.concat(chunks).toString('utf8')) : undefined;
}

/**
 * Starts the tracker. `PUT /issues/{id}` (`x-api-key` must be `apiKey`) applies
 * `{ version, fields }` unless it holds a newer version (409); an idempotency key seen before is
 * answered without applying again. `GET /issues/{id}` reads one back, `GET /issues` lists all.
 */
export async function startTracker(opts: { apiKey: string; port?: number; host?: string }): Promise<Tracker> {
  const issues = new Map<string, Issue>();
  const applied = new Set<string>();
  const server = createServer((req, res) => {
    const send = (status: number, value: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(value));
    };
    void (async () => {
      if (req.headers['x-api-key'] !== opts.apiKey) return send(401, { error: 'bad api key' });
      const path = new URL(req.url ?? '/', 'http://x').pathname;
      if (req.method === 'GET' && path === '/issues') return send(200, Object.fromEntries(issues));
      const m = /^\/issues\/([^/]+)$/.exec(path);
      if (!m) return send(404, { error: 'not found' });
      const id = decodeURIComponent(m[1]!);
      if (req.method === 'GET') {
        const issue = issues.get(id);
        return issue ? send(200, issue) : send(404, { error: 'no such issue' });
      }
      if (req.method !== 'PUT') return send(405, { error: 'PUT or GET' });
      const b = (await body(req)) as { version?: unknown; fields?: Record<string, unknown> } | undefined;
      if (typeof b?.version !== 'number' || typeof b.fields !== 'object') return send(400, { error: 'want { version, fields }' });
      const key = String(req.headers['idempotency-key'] ?? '');
      if (key && applied.has(key)) return send(200, { status: 'already applied' });
      const current = issues.get(id);
      if (current && current.version > b.version) return send(409, { error: `have version ${current.version}` });
      issues.set(id, { version: b.version, fields: { ...current?.fields, ...b.fields } });
      if (key) applied.add(key);
      return send(200, { status: 'applied', version: b.version });
    })().catch((err: Error) => send(400, { error: err.message }));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', resolve);
  });
  const { port } = server.address() as { port: number };
  return {
    server,
    issues,
    url: `http://${opts.host ?? '127.0.0.1'}:${port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
