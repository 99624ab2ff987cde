import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';

/** A fresh isolation prefix: `t` + 8 base-36 characters, valid as stream name part and subject token. */
export function uniquePrefix(): string {
  const n = randomBytes(6).readUIntBE(0, 6);
  return `t${n.toString(36).padStart(8, '0').slice(-8)}`;
}

/** A TCP port that was free a moment ago (for cluster routes, which cannot use -1). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}
