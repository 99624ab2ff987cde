// Every child process the bench starts goes through here, so none outlives it: a graceful
// SIGTERM when a part is done, and SIGKILL for whatever is left on any exit (normal end,
// thrown error, Ctrl-C or SIGTERM of the bench — run.ts turns those into process.exit).
import { type ChildProcess, type ForkOptions, fork } from 'node:child_process';

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});

/** fork(), tracked: SIGKILLed when the bench exits, whichever way. */
export function forkTracked(modulePath: string, args: string[], options: ForkOptions): ChildProcess {
  const child = fork(modulePath, args, options);
  live.add(child);
  child.once('exit', () => live.delete(child));
  return child;
}

/** SIGTERM, then SIGKILL after timeoutMs; resolves once the child is gone. */
export function stopChild(child: ChildProcess, timeoutMs = 10_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/** Resolves with the child's first IPC message that `accept` takes; rejects when it exits first or after timeoutMs. */
export function waitForMessage<T>(child: ChildProcess, accept: (m: unknown) => T | undefined, timeoutMs: number, what: string, tail = () => ''): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const done = () => {
      clearTimeout(timer);
      child.off('message', onMessage);
      child.off('exit', onExit);
    };
    const onMessage = (m: unknown) => {
      const v = accept(m);
      if (v === undefined) return;
      done();
      resolve(v);
    };
    const onExit = (code: number | null, signal: string | null) => {
      done();
      reject(new Error(`${what} exited (${signal ?? code}) before it was ready${tail() ? `:\n${tail()}` : ''}`));
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`${what} not ready within ${timeoutMs} ms${tail() ? `:\n${tail()}` : ''}`));
    }, timeoutMs);
    child.on('message', onMessage);
    child.once('exit', onExit);
  });
}
