import { createServer, type Server } from 'node:net';

/**
 * `count` distinct TCP ports on 127.0.0.1 that were free a moment ago: all are bound to
 * port 0 at once, so the kernel cannot hand out one port twice, then released. Another
 * process may still take one before it is used; prefer `-p -1` and the ports file where
 * the server allows it (cluster routes and monitoring ports of a cluster cannot).
 */
export async function freePorts(count: number): Promise<number[]> {
  const servers: Server[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const srv = createServer();
      servers.push(srv);
      await new Promise<void>((resolve, reject) => {
        srv.once('error', reject);
        srv.listen(0, '127.0.0.1', () => resolve());
      });
    }
    return servers.map((s) => (s.address() as { port: number }).port);
  } finally {
    await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  }
}

/** One TCP port on 127.0.0.1 that was free a moment ago (see {@link freePorts} for the race). */
export async function freePort(): Promise<number> {
  const [port] = await freePorts(1);
  return port!;
}
