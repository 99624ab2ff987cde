import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findNatsServer, type NatsServerProcess, spawnNatsServer } from '@bus/nats-server';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { uniquePrefix } from './prefix.js';
import { waitFor } from './wait.js';

/** A NATS server for one test suite. */
export interface TestNats {
  url: string;
  /** Unique per startNats() call: use as BUS_PREFIX so suites never share data. */
  prefix: string;
  kind: 'spawned' | 'external' | 'container';
  storeDir?: string;
  /** False with NATS_URL or a container: stop/start/restart/kill are not available. */
  canRestart: boolean;
  /** Stops the server (SIGTERM); with removeStore its data is deleted. */
  stop(opts?: { removeStore?: boolean }): Promise<void>;
  /** Starts a stopped server again on the same port with the same store. */
  start(): Promise<void>;
  /** stop() + start(): the data survives. */
  restart(): Promise<void>;
  /** SIGKILL: a crash. start() brings it back. */
  kill(): Promise<void>;
  logTail(lines?: number): string;
}

/** Resolves once a client can connect and JetStream answers. */
export async function waitForJetStream(url: string, timeoutMs = 15_000, log?: () => string, auth: ClientAuth = {}): Promise<void> {
  try {
    await waitFor(async () => {
      const nc = await connect({ servers: url, timeout: 1_000, reconnect: false, ...auth });
      try {
        await (await jetstreamManager(nc)).getAccountInfo();
        return true;
      } finally {
        await nc.close();
      }
    }, { what: `JetStream at ${url}`, timeoutMs, intervalMs: 50 });
  } catch (err) {
    throw new Error(`${(err as Error).message}${log ? `\nserver log:\n${log()}` : ''}`);
  }
}

async function spawned(opts: StartOptions): Promise<TestNats> {
  const storeDir = await mkdtemp(join(tmpdir(), 'testnats-'));
  let proc: NatsServerProcess = await spawnNatsServer({ storeDir, args: opts.args });
  const port = proc.port;
  const ready = async () => {
    try {
      await waitForJetStream(proc.url, 15_000, () => proc.logTail(), opts.auth);
    } catch (err) {
      await proc.kill(); // never leave a server behind a failed start
      throw err;
    }
  };
  await ready();
  const start = async () => {
    if (proc.running) return;
    proc = await spawnNatsServer({ storeDir, port, args: opts.args });
    await ready();
  };
  return {
    url: proc.url, prefix: uniquePrefix(), kind: 'spawned', storeDir, canRestart: true,
    async stop(o = {}) {
      await proc.stop();
      if (o.removeStore) await rm(storeDir, { recursive: true, force: true });
    },
    start,
    async restart() {
      await proc.stop();
      await start();
    },
    async kill() {
      await proc.kill();
    },
    logTail: (n) => proc.logTail(n),
  };
}

function external(url: string): TestNats {
  const refuse = async () => {
    throw new Error('NATS_URL points at a server this test kit did not start: it cannot be stopped or restarted (unset NATS_URL to spawn one)');
  };
  return {
    url, prefix: uniquePrefix(), kind: 'external', canRestart: false,
    stop: async () => undefined, start: refuse, restart: refuse, kill: refuse, logTail: () => '(external server: no log)',
  };
}

async function container(): Promise<TestNats | undefined> {
  try {
    const tc = await import('testcontainers');
    await tc.getContainerRuntimeClient();
    const { NatsContainer } = await import('@testcontainers/nats');
    const c = await new NatsContainer('nats:2.10-alpine').withJetStream().start();
    const url = `nats://${c.getHost()}:${c.getMappedPort(4222)}`;
    await waitForJetStream(url);
    const refuse = async () => {
      throw new Error('restart is not supported for the container fallback; install nats-server for fault tests');
    };
    return {
      url, prefix: uniquePrefix(), kind: 'container', canRestart: false,
      stop: async () => void (await c.stop()), start: refuse, restart: refuse, kill: refuse, logTail: () => '(see docker logs)',
    };
  } catch {
    return undefined; // no Docker engine, or the optional packages are missing
  }
}

/**
 * A real NATS with JetStream for one suite: NATS_URL when set, else a nats-server spawned
 * from PATH on a free port with its own store, else a container where a Docker engine
 * answers. Never a mock.
 */
/** Credentials the test kit itself uses to check a server started with auth flags. */
export interface ClientAuth {
  user?: string;
  pass?: string;
  token?: string;
}

export interface StartOptions {
  /** Extra nats-server flags, e.g. ['--user', 'u', '--pass', 'p']. */
  args?: string[];
  /** How the kit connects to check readiness when `args` turn on auth. */
  auth?: ClientAuth;
}

export async function startNats(opts: StartOptions = {}): Promise<TestNats> {
  if (process.env.NATS_URL) return external(process.env.NATS_URL);
  if (findNatsServer()) return spawned(opts);
  const c = await container();
  if (c) return c;
  throw new Error('no NATS for tests: install nats-server (apt-get install -y nats-server), set NATS_URL to a server with JetStream, or run a Docker engine');
}
