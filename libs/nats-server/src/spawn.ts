import { BusError } from '@bus/errors';
import { type ChildProcess, spawn } from 'node:child_process';
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';

/** nats-server from NATS_SERVER_BIN or PATH; undefined when there is none. */
export function findNatsServer(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.NATS_SERVER_BIN) return env.NATS_SERVER_BIN;
  for (const dir of [...(env.PATH ?? '').split(delimiter), '/usr/sbin', '/usr/local/bin']) {
    const candidate = join(dir, 'nats-server');
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

export interface NatsServerOptions {
  /** Default: findNatsServer(). */
  bin?: string;
  /** -1 (the default) lets the server pick a free port, read back from its ports file. */
  port?: number;
  /** Default 127.0.0.1: nothing here is meant for other machines. */
  host?: string;
  /** JetStream store; required so data survives a restart. */
  storeDir: string;
  /** Server name (needed in clusters). */
  name?: string;
  /** A config file instead of flags for cluster settings. */
  configFile?: string;
  /** Extra flags. */
  args?: string[];
  /** Lines of server output kept for logTail(). Default 200. */
  keepLines?: number;
  /** How long to wait for the client port. Default 15 000 ms. */
  startTimeoutMs?: number;
  /**
   * Run it in a process group of its own, so a Ctrl-C in the terminal does not reach it and
   * whoever started it decides when it stops (the launcher, after the services drained).
   * It is still killed when this process exits. Default false.
   */
  detached?: boolean;
}

export interface NatsServerProcess {
  url: string;
  port: number;
  pid: number;
  storeDir: string;
  /** SIGTERM (nats-server flushes JetStream), SIGKILL after timeoutMs. */
  stop(timeoutMs?: number): Promise<void>;
  /** SIGKILL: a crash, for fault tests. */
  kill(): Promise<void>;
  readonly running: boolean;
  logTail(lines?: number): string;
}

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});

async function waitForPort(portsDir: string, pid: number, child: ChildProcess, timeoutMs: number, log: () => string): Promise<number> {
  const file = join(portsDir, `nats-server_${pid}.ports`);
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new BusError('NATS_SERVER_START_FAILED', 'permanent', `nats-server exited with ${child.exitCode} while starting:\n${log()}`);
    if (existsSync(file)) {
      try {
        const ports = JSON.parse(readFileSync(file, 'utf8')) as { nats?: string[] };
        const url = ports.nats?.[0];
        if (url) return Number(new URL(url).port);
      } catch {
        // the server is still writing the file: read it again on the next turn
      }
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new BusError('NATS_SERVER_START_FAILED', 'transient', `nats-server did not report its port within ${timeoutMs} ms:\n${log()}`);
}

/**
 * Starts nats-server with JetStream and resolves once it listens. The port comes from
 * the server's ports file, so `-1` never races another process for a port.
 */
export async function spawnNatsServer(opts: NatsServerOptions): Promise<NatsServerProcess> {
  const bin = opts.bin ?? findNatsServer();
  if (!bin) throw new BusError('NATS_SERVER_NOT_FOUND', 'permanent', 'nats-server not found: install it (apt-get install -y nats-server) or set NATS_SERVER_BIN');
  const host = opts.host ?? '127.0.0.1';
  const portsDir = await mkdtemp(join(tmpdir(), 'nats-ports-'));
  const args = [
    ...(opts.configFile ? ['-c', opts.configFile] : []),
    '-a', host, '-p', String(opts.port ?? -1), '-js', '-sd', opts.storeDir,
    '--ports_file_dir', portsDir,
    ...(opts.name ? ['-n', opts.name] : []),
    ...(opts.args ?? []),
  ];
  const lines: string[] = [];
  const keep = opts.keepLines ?? 200;
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: opts.detached ?? false });
  live.add(child);
  const onData = (chunk: Buffer) => {
    for (const l of chunk.toString().split('\n')) if (l) lines.push(l);
    if (lines.length > keep) lines.splice(0, lines.length - keep);
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  const exited = new Promise<void>((r) => child.once('exit', () => {
    live.delete(child);
    r();
  }));
  const logTail = (n = 30) => lines.slice(-n).join('\n');
  let port: number;
  try {
    port = await waitForPort(portsDir, child.pid ?? 0, child, opts.startTimeoutMs ?? 15_000, logTail);
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  } finally {
    await rm(portsDir, { recursive: true, force: true }).catch(() => undefined);
  }
  const running = () => child.exitCode === null && child.signalCode === null;
  return {
    url: `nats://${host}:${port}`,
    port,
    pid: child.pid ?? 0,
    storeDir: opts.storeDir,
    get running() {
      return running();
    },
    logTail,
    async stop(timeoutMs = 10_000) {
      if (!running()) return;
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      child.kill('SIGTERM');
      await exited;
      clearTimeout(timer);
    },
    async kill() {
      if (!running()) return;
      child.kill('SIGKILL');
      await exited;
    },
  };
}

