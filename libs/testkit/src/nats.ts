import { accessSync, constants } from 'node:fs';
import { findNatsServer } from '@bus/nats-server';
import { containerRuntimeAnswers, startContainer } from './container.js';
import { uniquePrefix } from './prefix.js';
import { type ClientAuth, waitReady } from './ready.js';
import { startSpawned } from './spawned.js';

/** Where a {@link TestNats} runs: NATS_URL, a nats-server child process, or a container. */
export type NatsKind = 'spawned' | 'external' | 'container';

/** Options for {@link startNats}. */
export interface StartOptions {
  /** Enable JetStream and wait for it to answer. Default true. */
  jetstream?: boolean;
  /** Extra nats-server flags, e.g. `['--user', 'u', '--pass', 'p']`. Ignored with NATS_URL. Default none. */
  args?: string[];
  /** How the kit connects for its readiness check when `args` turn on auth. Default none. */
  auth?: ClientAuth;
}

/** A real NATS server for one test suite. */
export interface TestNats {
  /** Client URL, e.g. `nats://127.0.0.1:41523`; the same after restart() and start(). */
  url: string;
  /** Unique per startNats() call (see uniquePrefix): prefix streams and subjects with it. */
  prefix: string;
  /** Where it runs; only 'spawned' can be stopped and started. */
  kind: NatsKind;
  /** JetStream store directory (spawned only); it survives stop(), restart() and kill(). */
  storeDir?: string;
  /** True only for 'spawned': stop/start/restart/kill control the server. */
  canRestart: boolean;
  /**
   * SIGTERM (SIGKILL after 10 s) and wait for the exit; with `removeStore` (default false)
   * the store is deleted too. A no-op for 'external'. Safe to call twice.
   */
  stop(opts?: { removeStore?: boolean }): Promise<void>;
  /** Starts a stopped or killed server on the same port and store; resolves when it is ready. */
  start(): Promise<void>;
  /** stop() then start(): same URL, same data. */
  restart(): Promise<void>;
  /** SIGKILL, no restart: a crash. start() brings it back. */
  kill(): Promise<void>;
  /** The last `lines` (default 50) lines of server output, across restarts. */
  logTail(lines?: number): string;
}

const NO_NATS =
  'no NATS server for tests: install nats-server (apt-get install -y nats-server, or set NATS_SERVER_BIN ' +
  'to its path), or set NATS_URL to a running server with JetStream (-js), or start a Docker engine ' +
  '(the kit then runs a nats container)';

function externalNats(url: string): TestNats {
  const refuse = (op: string) => async () => {
    throw new Error(`cannot ${op} the NATS server: NATS_URL=${url} points at a server the test kit did not start. ` +
      'Skip this test when canRestart is false, or unset NATS_URL to let the kit spawn nats-server');
  };
  return {
    url, prefix: uniquePrefix(), kind: 'external', canRestart: false,
    stop: async () => undefined,
    start: refuse('start'), restart: refuse('restart'), kill: refuse('kill'),
    logTail: () => `(no log: NATS_URL=${url} is not run by the test kit)`,
  };
}

function checkedBin(bin: string): string {
  try {
    accessSync(bin, constants.X_OK);
    return bin;
  } catch {
    throw new Error(`nats-server at ${bin} is not an executable file: fix NATS_SERVER_BIN, or unset it to use the one on PATH`);
  }
}

/**
 * A real NATS server for one suite, never a mock. In order:
 * 1. NATS_URL set: that server ('external'); the kit checks it answers, never stops it.
 * 2. nats-server on PATH or at NATS_SERVER_BIN: spawned on 127.0.0.1, a free port chosen by
 *    the server (`-p -1`, read from its ports file) and a fresh temp store ('spawned').
 * 3. A Docker engine answers: a nats container ('container').
 * Otherwise it throws saying how to get one. Resolves once a client connects and, unless
 * `jetstream: false`, JetStream answers. Every call gets a fresh `prefix`.
 */
export async function startNats(opts: StartOptions = {}): Promise<TestNats> {
  const jetstream = opts.jetstream ?? true;
  const external = process.env.NATS_URL;
  if (external) {
    await waitReady(external, { jetstream, auth: opts.auth, timeoutMs: 5_000 }).catch((err: Error) => {
      throw new Error(`NATS_URL=${external} is set but not usable${jetstream ? ' (JetStream is required)' : ''}: ` +
        `${err.message}. Start that server (with -js) or unset NATS_URL to let the kit spawn one`, { cause: err });
    });
    return externalNats(external);
  }
  const bin = findNatsServer();
  if (bin) return startSpawned(checkedBin(bin), { ...opts, jetstream });
  if (await containerRuntimeAnswers()) return startContainer({ ...opts, jetstream });
  throw new Error(NO_NATS);
}
