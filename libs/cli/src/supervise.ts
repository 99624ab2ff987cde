import { type ChildProcess, fork } from 'node:child_process';
import { existsSync } from 'node:fs';
import { serviceNodeFlags } from '@bus/bus';
import { BusError } from '@bus/errors';

/** A service the launcher runs (discoverServices). */
export interface SupervisedService {
  name: string;
  /** The built entry point, e.g. services/ingest/dist/main.js. */
  main: string;
}

/** What a service tells the launcher over IPC once it listens. */
export interface ReadyMessage {
  type: 'ready';
  service: string;
  endpoints: Record<string, string>;
}

/** Options for {@link supervise}. */
export interface SuperviseOptions {
  /** Required. The environment every service gets. */
  env: NodeJS.ProcessEnv;
  /** Failed starts in a row (exits before it said ready) after which a service is given up. Default 4. */
  maxFailedStarts?: number;
  /** Delay before the first restart; doubled per failed start in a row, at most 30 s. Default 1 000 ms. */
  backoffMs?: number;
  /** How long a stopping service may drain before SIGKILL; above the services' own 30 s drain limit. Default 35 000 ms. */
  stopTimeoutMs?: number;
  /** Where the launcher's own lines go. Default console.log / console.error. */
  print?: (line: string) => void;
  printError?: (line: string) => void;
}

export interface Supervisor {
  /** Services given up on, with the error each last showed. */
  readonly gaveUp: ReadonlyMap<string, string>;
  /**
   * One SIGTERM to each running service (each drains once), SIGKILL after stopTimeoutMs;
   * resolves when all have exited. No restarts from here on.
   */
  stop(): Promise<void>;
  /** A second Ctrl-C: one more SIGTERM, which makes a draining service exit at once. */
  hurry(): void;
}

const KEEP_LINES = 40;

/** The message of the last error or fatal pino line in `lines`, else the last lines as they are. */
export function lastError(lines: string[]): string {
  for (let i = lines.length - 1; i >= 0; i--) {
    try {
      const l = JSON.parse(lines[i]!) as { level?: number; msg?: string };
      if ((l.level ?? 0) >= 50 && l.msg) return l.msg;
    } catch {
      // not a log line (a stack trace, a plain message): shown below if nothing better
    }
  }
  return lines.slice(-8).join('\n') || '(it printed nothing)';
}

/**
 * Runs each service as a child process and keeps it running. Each child leads its own
 * process group: a Ctrl-C in the terminal reaches only the launcher, which then sends each
 * service exactly one SIGTERM, so every service drains once (a second signal would make it
 * exit at once). A child whose launcher dies anyway stops by itself (its IPC channel closes).
 *
 * A service that exits before saying it is ready (bad configuration, NATS refused) is started
 * again after 1 s, 2 s, 4 s …; after `maxFailedStarts` in a row it is given up, and its last
 * error is shown. One that exits after it was ready is restarted after `backoffMs`.
 */
export function supervise(services: SupervisedService[], o: SuperviseOptions): Supervisor {
  const print = o.print ?? console.log;
  const printError = o.printError ?? console.error;
  const maxFailedStarts = o.maxFailedStarts ?? 4;
  const backoffMs = o.backoffMs ?? 1_000;
  const children = new Map<string, ChildProcess>();
  const timers = new Set<NodeJS.Timeout>();
  const gaveUp = new Map<string, string>();
  let stopping = false;

  const start = (s: SupervisedService, failedBefore: number) => {
    if (!existsSync(s.main)) throw new BusError('CLI_NOT_BUILT', 'permanent', `${s.name} is not built (${s.main} missing): run npm run build`);
    // heap flags per service (BUS_SERVICE_NODE_FLAGS), after the launcher's own (e.g. --enable-source-maps)
    const execArgv = [...process.execArgv, ...serviceNodeFlags(s.name, o.env)];
    const child = fork(s.main, [], { env: o.env, execArgv, stdio: ['ignore', 'pipe', 'pipe', 'ipc'], detached: true });
    children.set(s.name, child);
    const lines: string[] = [];
    const keep = (out: NodeJS.WriteStream) => (chunk: Buffer) => {
      out.write(chunk);
      for (const l of chunk.toString().split('\n')) if (l.trim()) lines.push(l);
      if (lines.length > KEEP_LINES) lines.splice(0, lines.length - KEEP_LINES);
    };
    child.stdout?.on('data', keep(process.stdout));
    child.stderr?.on('data', keep(process.stderr));
    let ready = false;
    child.on('message', (m: ReadyMessage) => {
      if (m?.type !== 'ready') return;
      ready = true;
      const endpoints = Object.entries(m.endpoints).map(([what, url]) => `${what} ${url}`).join(' · ');
      print(`✔ ${m.service.padEnd(10)} ${endpoints}`);
    });
    child.once('exit', (code, signal) => {
      children.delete(s.name);
      if (stopping) return;
      const failed = ready ? 0 : failedBefore + 1;
      if (failed >= maxFailedStarts) {
        const error = lastError(lines);
        gaveUp.set(s.name, error);
        printError(`✘ ${s.name} failed to start ${failed} times in a row; not starting it again. Its last error:\n  ${error.replaceAll('\n', '\n  ')}\n` +
          `  Fix that, then restart (Ctrl-C and npm start).`);
        return;
      }
      const delayMs = Math.min(backoffMs * 2 ** Math.max(0, failed - 1), 30_000);
      const why = ready ? 'exited' : 'exited before it was ready';
      printError(`✘ ${s.name} ${why} (${signal ?? `code ${code}`}); starting it again in ${delayMs < 1_000 ? `${delayMs} ms` : `${(delayMs / 1000).toFixed(1)} s`}` +
        (ready ? '' : ` (failed start ${failed} of ${maxFailedStarts})`));
      const timer = setTimeout(() => {
        timers.delete(timer);
        if (!stopping) start(s, failed);
      }, delayMs);
      timers.add(timer);
    });
  };
  for (const s of services) start(s, 0);

  return {
    gaveUp,
    async stop() {
      stopping = true;
      for (const t of timers) clearTimeout(t);
      timers.clear();
      await Promise.all([...children.values()].map((child) => new Promise<void>((done) => {
        if (child.exitCode !== null || child.signalCode !== null) return done();
        const timer = setTimeout(() => child.kill('SIGKILL'), o.stopTimeoutMs ?? 35_000);
        child.once('exit', () => {
          clearTimeout(timer);
          done();
        });
        child.kill('SIGTERM');
      })));
    },
    hurry() {
      for (const child of children.values()) child.kill('SIGTERM');
    },
  };
}
