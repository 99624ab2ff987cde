import { spawn } from 'node:child_process';
import { killAtExit } from './cleanup.js';
import { waitFor, within } from './wait.js';

/** How a child process ended: an exit code, or the signal that ended it. */
export interface ProcessExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** Options for {@link startProcess}. */
export interface ProcessOptions {
  /** Required. The executable, e.g. `process.execPath` for a Node script. */
  command: string;
  /** Arguments. Default none. */
  args?: string[];
  /** Added to (and overriding) this process's environment. Default nothing added. */
  env?: Record<string, string>;
  /** Working directory. Default this process's. */
  cwd?: string;
}

/** A child process for killed-worker and drain tests, its stdout and stderr captured. */
export interface TestProcess {
  /** 0 when the command could not be started (then `output()` says why). */
  pid: number;
  /** Everything it printed so far, stdout and stderr interleaved as they arrived. */
  output(): string;
  /**
   * Resolves with the first match of `pattern` in the output. Fails after `timeoutMs`
   * (default 15 000), or as soon as the process exits without printing it; the error names
   * `what` and shows the last lines of output.
   */
  waitForOutput(pattern: RegExp, what: string, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** Sends `signal` (default SIGTERM); does not wait (await `exited`). */
  kill(signal?: NodeJS.Signals): void;
  /** Settles once it has exited; `{ code: null, signal: null }` if it never started. */
  exited: Promise<ProcessExit>;
}

/** Output kept per process, in characters: the newest half is kept when it grows past this. */
const KEEP_CHARS = 1_000_000;
const EXITED = Symbol('exited');

/**
 * Spawns `command` with piped output. It is killed (SIGKILL) if the test process ends
 * first, so a failed test never leaves a worker running.
 */
export function startProcess(opts: ProcessOptions): TestProcess {
  const label = [opts.command, ...(opts.args ?? [])].join(' ').slice(0, 120);
  const child = spawn(opts.command, opts.args ?? [], {
    cwd: opts.cwd, env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const append = (text: string) => {
    out += text;
    if (out.length > KEEP_CHARS) out = out.slice(-KEEP_CHARS / 2);
  };
  child.stdout?.on('data', (d: Buffer) => append(d.toString()));
  child.stderr?.on('data', (d: Buffer) => append(d.toString()));
  const untrack = killAtExit(() => child.kill('SIGKILL'));
  let exit: ProcessExit | undefined;
  const exited = new Promise<ProcessExit>((resolve) => {
    const done = (e: ProcessExit) => {
      untrack();
      exit ??= e;
      resolve(exit);
    };
    child.once('exit', (code, signal) => done({ code, signal }));
    child.on('error', (err) => {
      append(`[testkit] ${label}: ${err.message}\n`);
      if (child.pid === undefined) done({ code: null, signal: null }); // never started
    });
  });
  const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));
  const tail = (n = 30) => `last output of ${label}:\n${out.split('\n').slice(-n).join('\n')}`;

  return {
    pid: child.pid ?? 0,
    output: () => out,
    async waitForOutput(pattern, what, timeoutMs = 15_000) {
      let found: RegExpMatchArray | typeof EXITED;
      try {
        found = await waitFor(() => out.match(pattern) ?? (exit ? EXITED : undefined), { what, timeoutMs });
      } catch (err) {
        throw new Error(`${(err as Error).message}\n${tail()}`);
      }
      if (found !== EXITED) return found;
      await within(closed, 1_000); // output still in the pipe when it exited
      const late = out.match(pattern);
      if (late) return late;
      throw new Error(`${label} exited (code ${exit?.code}, signal ${exit?.signal}) before ${what} (no match for ${pattern})\n${tail()}`);
    },
    kill: (signal = 'SIGTERM') => void child.kill(signal),
    exited,
  };
}
