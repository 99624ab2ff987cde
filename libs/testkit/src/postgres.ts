import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { killAtExit, removeAtExit } from './cleanup.js';
import { freePort } from './ports.js';

/** A PostgreSQL server private to this test process. */
export interface TestPostgres {
  /** e.g. `postgres://postgres@127.0.0.1:41234/postgres` (trust auth, loopback only). */
  url: string;
  /** The last `lines` (default 30) lines of the server's log. */
  logTail(lines?: number): string;
  /** Fast shutdown and wait; the data directory is removed when the process ends. Safe to call twice. */
  stop(): Promise<void>;
}

const NO_POSTGRES =
  'no PostgreSQL for tests: install the server (apt-get install -y postgresql; bash scripts/bootstrap.sh does), ' +
  'set PG_BIN_DIR to the directory holding initdb and postgres, or set TEST_PG_URL to a running server';

/** The directory with initdb and postgres: PG_BIN_DIR, else Debian's newest /usr/lib/postgresql/<n>/bin, else `pg_config --bindir`. */
export function findPostgresBin(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const has = (dir: string) => existsSync(join(dir, 'initdb')) && existsSync(join(dir, 'postgres'));
  if (env.PG_BIN_DIR) return has(env.PG_BIN_DIR) ? env.PG_BIN_DIR : undefined;
  const debian = '/usr/lib/postgresql';
  if (existsSync(debian)) {
    const versions = readdirSync(debian).filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a));
    for (const v of versions) if (has(join(debian, v, 'bin'))) return join(debian, v, 'bin');
  }
  try {
    const dir = execFileSync('pg_config', ['--bindir'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    return has(dir) ? dir : undefined;
  } catch {
    return undefined;
  }
}

/** PostgreSQL refuses to run as root: then the server runs as `postgres` (Debian's), else `nobody`. */
function serverUser(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const users = readFileSync('/etc/passwd', 'utf8').split('\n').map((l) => l.split(':'));
  const u = users.find((f) => f[0] === 'postgres') ?? users.find((f) => f[0] === 'nobody');
  if (!u) throw new Error('the tests run as root and there is no postgres or nobody user to run PostgreSQL as: set TEST_PG_URL');
  return { uid: Number(u[2]), gid: Number(u[3]) };
}

/**
 * Starts a throwaway PostgreSQL, like startNats does for nats-server: initdb in a temp
 * directory, the server on a free loopback port (TCP only, no socket file), trust auth for
 * user `postgres`, durability off (fsync, synchronous_commit: a test server loses nothing it
 * needs on a crash). It is stopped and its directory removed when the process ends.
 */
export async function startPostgres(opts: { timeoutMs?: number } = {}): Promise<TestPostgres> {
  const bin = findPostgresBin();
  if (!bin) throw new Error(NO_POSTGRES);
  const user = serverUser();
  const dir = mkdtempSync(join(tmpdir(), 'testkit-pg-'));
  removeAtExit(dir);
  if (user) chownSync(dir, user.uid, user.gid);
  const data = join(dir, 'data');
  const init = spawnSync(join(bin, 'initdb'), ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync', '--no-instructions'],
    { encoding: 'utf8', ...user, cwd: dir });
  if (init.status !== 0) throw new Error(`initdb failed (${init.status ?? init.error?.message}):\n${init.stdout}\n${init.stderr}`);

  const timeoutMs = opts.timeoutMs ?? 60_000;
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const lines: string[] = [];
    const child: ChildProcess = spawn(join(bin, 'postgres'), ['-D', data, '-p', String(port), '-c', 'listen_addresses=127.0.0.1',
      '-c', 'unix_socket_directories=', '-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off', '-c', 'max_connections=100'],
    { stdio: ['ignore', 'pipe', 'pipe'], ...user, cwd: dir });
    const onData = (d: Buffer) => {
      for (const l of d.toString().split('\n')) if (l) lines.push(l);
      if (lines.length > 200) lines.splice(0, lines.length - 200);
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    const untrack = killAtExit(() => stopSync(child));
    const logTail = (n = 30) => lines.slice(-n).join('\n');
    // an idle server must not keep the test process alive: it is stopped at exit
    child.unref();
    (child.stdout as unknown as { unref?: () => void } | null)?.unref?.();
    (child.stderr as unknown as { unref?: () => void } | null)?.unref?.();
    const deadline = Date.now() + timeoutMs;
    let failure: string | undefined;
    while (!lines.some((l) => l.includes('ready to accept connections'))) {
      if (child.exitCode !== null || child.signalCode !== null) failure = `postgres exited (${child.exitCode ?? child.signalCode}) while starting`;
      else if (Date.now() > deadline) failure = `PostgreSQL on 127.0.0.1:${port} was not ready within ${timeoutMs} ms`;
      if (failure) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    if (failure) {
      untrack();
      stopSync(child);
      // another process took the free port between our check and postgres binding it: try another
      if (attempt < 3 && /could not (bind|create listen socket)/i.test(logTail())) continue;
      throw new Error(`${failure}:\n${logTail()}`);
    }
    let stopped: Promise<void> | undefined;
    return {
      url: `postgres://postgres@127.0.0.1:${port}/postgres`,
      logTail,
      stop: () => (stopped ??= new Promise<void>((resolve) => {
        untrack();
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.ref(); // wait for it, even when nothing else keeps the process alive
        child.once('exit', () => resolve());
        child.kill('SIGINT'); // fast shutdown
      })),
    };
  }
}

/** Immediate shutdown, waiting (bounded, synchronously: it runs at process exit) for the server to go. */
function stopSync(child: ChildProcess): void {
  if (child.exitCode !== null || child.signalCode !== null || !child.pid) return;
  child.kill('SIGQUIT');
  spawnSync('sh', ['-c', `for i in $(seq 100); do kill -0 ${child.pid} 2>/dev/null || exit 0; sleep 0.05; done; kill -9 ${child.pid}`]);
}

let shared: Promise<string> | undefined;

/**
 * The PostgreSQL URL for this test process: TEST_PG_URL when set, else a private server
 * (startPostgres) started on the first call and shared by every later one. Suites still use a
 * schema of their own.
 */
export function testPgUrl(): Promise<string> {
  if (process.env.TEST_PG_URL) return Promise.resolve(process.env.TEST_PG_URL);
  shared ??= startPostgres().then((pg) => pg.url);
  return shared;
}
