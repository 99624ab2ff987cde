import { rmSync } from 'node:fs';

/**
 * Last-resort cleanup for everything the kit starts, so a test process never leaves a
 * server, a child or a temp dir behind: on normal exit, on an uncaught error, and on
 * SIGINT/SIGTERM/SIGHUP (the test runner stops a file's process with SIGTERM on a hang;
 * without this its servers were seen orphaned to PID 1). SIGKILL cannot be caught.
 */
type Task = () => void;
const kills = new Set<Task>();
const dirs = new Set<string>();

/** Runs `kill` (synchronously; send SIGKILL) if the process ends first. Returns the undo. */
export function killAtExit(kill: Task): () => void {
  kills.add(kill);
  return () => kills.delete(kill);
}

/**
 * Removes `dir` when the process ends, unless TESTKIT_KEEP_STORE=1 (keep stores to read
 * them after a failure). Returns the undo.
 */
export function removeAtExit(dir: string): () => void {
  dirs.add(dir);
  return () => dirs.delete(dir);
}

function runAll(): void {
  for (const kill of kills) {
    try {
      kill();
    } catch {
      // already gone
    }
  }
  kills.clear();
  if (process.env.TESTKIT_KEEP_STORE !== '1') {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
  }
  dirs.clear();
}

process.once('exit', runAll);
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.once(signal, () => {
    runAll();
    // Nobody else handles it: die of the signal as if we had never listened.
    if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
  });
}
