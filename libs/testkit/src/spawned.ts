import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type NatsServerProcess, spawnNatsServer } from '@bus/nats-server';
import { killAtExit, removeAtExit } from './cleanup.js';
import type { StartOptions, TestNats } from './nats.js';
import { uniquePrefix } from './prefix.js';
import { waitReady } from './ready.js';
import { ServerLog } from './server-log.js';

/** How long a (re)started server gets to answer, in milliseconds. */
const READY_TIMEOUT_MS = 15_000;
/** SIGTERM → SIGKILL grace on stop(), in milliseconds: JetStream flushes its store on SIGTERM. */
const STOP_TIMEOUT_MS = 10_000;

/** Internal: a nats-server child with its own temp store, restartable on the same port. */
export async function startSpawned(bin: string, opts: StartOptions & { jetstream: boolean }): Promise<TestNats> {
  const storeDir = await mkdtemp(join(tmpdir(), 'testnats-'));
  const keepUntilExit = removeAtExit(storeDir);
  // spawnNatsServer always passes -js; a later -js=false wins (Go flags: last one counts).
  const args = [...(opts.jetstream ? [] : ['-js=false']), ...(opts.args ?? [])];
  const log = new ServerLog();
  let proc: NatsServerProcess | undefined;
  let untrack: () => void = () => undefined;
  let ended = 'stopped';
  let port: number | undefined;

  const launch = async (why: string) => {
    const next = await spawnNatsServer({ bin, storeDir, port, args });
    untrack = killAtExit(() => void next.kill());
    log.replace(next, why);
    proc = next;
    port = next.port;
    try {
      await waitReady(next.url, { jetstream: opts.jetstream, auth: opts.auth, timeoutMs: READY_TIMEOUT_MS, log: () => log.tail() });
    } catch (err) {
      await next.kill(); // never leave a half-started server behind
      throw err;
    }
  };

  try {
    await launch('started');
  } catch (err) {
    await rm(storeDir, { recursive: true, force: true });
    keepUntilExit();
    throw new Error(`startNats: could not start ${bin} (extra args: ${args.join(' ') || 'none'}): ${(err as Error).message}`, { cause: err });
  }
  const url = proc!.url;

  const start = async () => {
    if (proc?.running) return;
    try {
      await launch(`${ended}; started again on the same port and store`);
    } catch (err) {
      throw new Error(`could not start nats-server again on ${url}: ${(err as Error).message}`, { cause: err });
    }
  };
  const stop = async (o: { removeStore?: boolean } = {}) => {
    if (proc?.running) ended = 'stopped (SIGTERM)';
    await proc?.stop(STOP_TIMEOUT_MS);
    untrack();
    if (o.removeStore) {
      await rm(storeDir, { recursive: true, force: true });
      keepUntilExit();
    }
  };

  return {
    url, prefix: uniquePrefix(), kind: 'spawned', storeDir, canRestart: true,
    stop,
    start,
    async restart() {
      await stop();
      await start();
    },
    async kill() {
      if (proc?.running) ended = 'killed (SIGKILL)';
      await proc?.kill();
      untrack();
    },
    logTail: (lines) => log.tail(lines),
  };
}
