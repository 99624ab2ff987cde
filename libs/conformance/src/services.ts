// The real services as child processes, each in a slot that can be killed and started again.
import { BusError } from '@bus/errors';
import { type ChildProcess, fork } from 'node:child_process';
import { appendFileSync, existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export type ServiceName = 'ingest' | 'transform' | 'deliver' | 'reconcile';

const root = resolve(fileURLToPath(new URL('../../../', import.meta.url)));
const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});

interface Slot {
  name: ServiceName;
  index: number;
  child?: ChildProcess;
  endpoints: Record<string, string>;
  tail: string[];
  /** Set while we stop it on purpose, so its exit is not a crash. */
  stopping: boolean;
  restarts: number;
}

/** Unexpected exits restarted per slot at most this often (a service that cannot start would loop). */
const MAX_RESTARTS = 3;

/**
 * Runs `services/<name>/dist/main.js` with IPC (a service stops when its launcher is gone, so
 * none outlives the run; every child is also SIGKILLed when this process exits). Ready when
 * it sends `{type: 'ready'}`. An exit we did not cause is a crash: recorded with its last
 * output and restarted, like `bus up` does.
 */
export function createServices(env: NodeJS.ProcessEnv, say: (line: string) => void) {
  const slots = new Map<string, Slot>();
  const crashes: string[] = [];

  function launch(slot: Slot): Promise<void> {
    const main = resolve(root, 'services', slot.name, 'dist', 'main.js');
    if (!existsSync(main)) throw new BusError('CHAOS_SERVICE_NOT_READY', 'permanent', `${slot.name} is not built (${main} missing): run npm run build`);
    const child = fork(main, [], { env: { ...env, LOG_LEVEL: env.LOG_LEVEL ?? 'warn' }, stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
    slot.child = child;
    slot.stopping = false;
    live.add(child);
    // CHAOS_LOG_DIR: every line of every service, one file per slot, to read a failing seed afterwards
    const logFile = env.CHAOS_LOG_DIR ? join(env.CHAOS_LOG_DIR, `${slot.name}-${slot.index}.log`) : undefined;
    const onData = (chunk: Buffer) => {
      if (logFile) appendFileSync(logFile, chunk);
      for (const line of chunk.toString().split('\n')) if (line) slot.tail.push(line.length > 600 ? `${line.slice(0, 600)}…` : line);
      slot.tail.splice(0, Math.max(0, slot.tail.length - 30));
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    const label = `${slot.name}#${slot.index}`;
    child.once('exit', (code, signal) => {
      live.delete(child);
      if (slot.stopping || slot.child !== child) return;
      crashes.push(`${label} exited by itself (${signal ?? code}); last output:\n  ${slot.tail.slice(-8).join('\n  ')}`);
      say(`! ${label} exited by itself (${signal ?? code})${slot.restarts < MAX_RESTARTS ? '; restarting it' : ''}`);
      if (slot.restarts++ < MAX_RESTARTS) launch(slot).catch((err: Error) => crashes.push(`${label} did not come back: ${err.message}`));
    });
    return new Promise<void>((resolveReady, reject) => {
      const timer = setTimeout(() => reject(new BusError('CHAOS_SERVICE_NOT_READY', 'transient', `${label} not ready within 60 s:\n${slot.tail.join('\n')}`)), 60_000);
      child.on('message', (m: { type?: string; endpoints?: Record<string, string> }) => {
        if (m?.type !== 'ready') return;
        clearTimeout(timer);
        slot.endpoints = m.endpoints ?? {};
        resolveReady();
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new BusError('CHAOS_SERVICE_NOT_READY', 'permanent', `${label} exited (${signal ?? code}) before it was ready:\n${slot.tail.join('\n')}`));
      });
    });
  }

  const slotOf = (name: ServiceName, index: number) => {
    const key = `${name}#${index}`;
    return slots.get(key) ?? slots.set(key, { name, index, endpoints: {}, tail: [], stopping: false, restarts: 0 }).get(key)!;
  };

  async function stop(name: ServiceName, index: number, signal: NodeJS.Signals): Promise<void> {
    const slot = slotOf(name, index);
    const child = slot.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    slot.stopping = true;
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill(signal);
    const force = setTimeout(() => child.kill('SIGKILL'), 20_000); // a drain that hangs must not hang the run
    await exited;
    clearTimeout(force);
  }

  return {
    /** Starts (or starts again) slot `index` of `name`; resolves when it is ready. */
    start: (name: ServiceName, index = 0) => launch(slotOf(name, index)),
    /** Stops it on purpose: SIGKILL (a crash), or SIGTERM (a deploy: drain, then exit). */
    stop,
    endpoints: (name: ServiceName, index = 0) => slotOf(name, index).endpoints,
    /** How many slots of `name` have a live process. */
    running: (name: ServiceName) => [...slots.values()].filter((s) => s.name === name && s.child && s.child.exitCode === null && s.child.signalCode === null).length,
    /** Exits nobody asked for, with their last output. */
    crashes,
    /** Stops every slot: SIGTERM (drain) by default; SIGKILL when nothing they do matters any more. */
    async stopAll(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
      await Promise.all([...slots.values()].map((s) => stop(s.name, s.index, signal)));
    },
  };
}
export type Services = ReturnType<typeof createServices>;
