// nats-server's own view of its memory: RSS holds the garbage of past writes until Go hands it back to the OS
// (tens of MB after a burst), so the benches also read the Go heap in use right after a full collection — what
// the server keeps. nats-server serves Go's profiling endpoints on `--profile <port>`; the heap profile with
// gc=1 collects first and ends with the runtime's MemStats.
import { type NatsServerProcess, spawnNatsServer } from '@bus/nats-server';
import { freePort } from '@bus/testkit';

export interface ProfiledServer {
  server: NatsServerProcess;
  /** Bytes of Go heap in use right after a forced full collection. */
  liveHeap(): Promise<number>;
}

/** A nats-server (JetStream on `storeDir`) with its profiling endpoint on a port of its own. */
export async function spawnProfiledNats(storeDir: string): Promise<ProfiledServer> {
  const port = await freePort();
  const server = await spawnNatsServer({ storeDir, args: ['--profile', String(port)] });
  return { server, liveHeap: () => liveHeap(port) };
}

/** `HeapAlloc` after a forced collection, from the server's heap profile on `profilePort`. */
export async function liveHeap(profilePort: number): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${profilePort}/debug/pprof/heap?gc=1&debug=1`, { signal: AbortSignal.timeout(30_000) });
  const text = await res.text();
  const m = /^# HeapAlloc = (\d+)$/m.exec(text);
  if (!m) throw new Error(`nats-server's heap profile on port ${profilePort} has no HeapAlloc line (HTTP ${res.status})`);
  return Number(m[1]);
}
