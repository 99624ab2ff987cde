import { type ChildProcess, spawn } from 'node:child_process';
import { waitFor } from './wait.js';

/** A child process for killed-worker tests, with its output captured. */
export interface TestProcess {
  pid: number;
  output(): string;
  waitForOutput(pattern: RegExp, what: string, timeoutMs?: number): Promise<RegExpMatchArray>;
  kill(signal?: NodeJS.Signals): void;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const children = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of children) c.kill('SIGKILL');
});

export function startProcess(opts: { command: string; args?: string[]; env?: Record<string, string>; cwd?: string }): TestProcess {
  const child = spawn(opts.command, opts.args ?? [], { cwd: opts.cwd, env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => {
      children.delete(child);
      resolve({ code, signal });
    }));
  return {
    pid: child.pid ?? 0,
    output: () => out,
    async waitForOutput(pattern, what, timeoutMs = 15_000) {
      try {
        return await waitFor(() => out.match(pattern), { what, timeoutMs });
      } catch (err) {
        throw new Error(`${(err as Error).message}\nlast output:\n${out.split('\n').slice(-20).join('\n')}`);
      }
    },
    kill: (signal = 'SIGTERM') => void child.kill(signal),
    exited,
  };
}
