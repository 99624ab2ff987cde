import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, it } from 'node:test';
import { waitFor } from '@bus/testkit';
import { discoverServices } from './up.js';
import { lastError } from './supervise.js';

const main = fileURLToPath(new URL('./main.js', import.meta.url));

/** `bus up` as `npm start` runs it from a terminal: the leader of its own process group, an embedded nats-server, private data. */
function launch(env: Record<string, string>) {
  const dataDir = mkdtempSync(join(tmpdir(), 'bus-up-'));
  const child = spawn(process.execPath, [main, 'up'], {
    detached: true, stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env, NATS_URL: '', BUS_DATA_DIR: dataDir, BUS_NATS_PORT: '-1', BUS_PREFIX: `up${process.pid}`, LOG_LEVEL: 'info',
      INGEST_PORT: '0', TRANSFORM_OPS_PORT: '0', DELIVER_OPS_PORT: '0', RECONCILE_OPS_PORT: '0', SANDBOX_PORT: '0', CONSOLE_PORT: '0', CONSOLE_OPS_PORT: '0', ...env,
    },
  });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => { out += d; });
  child.stderr?.on('data', (d: Buffer) => { out += d; });
  const exited = new Promise<number | null>((res) => child.once('exit', (code) => res(code)));
  return { child, dataDir, output: () => out, exited };
}

/** Pino lines of one service whose message is `msg`. */
const linesOf = (output: string, service: string, msg: string) =>
  output.split('\n').filter((l) => l.includes(`"service":"${service}"`) && l.includes(`"msg":"${msg}"`));

describe('bus up (npm start)', () => {
  let running: ReturnType<typeof launch> | undefined;
  afterEach(async () => {
    if (running && running.child.exitCode === null) {
      try {
        process.kill(-running.child.pid!, 'SIGKILL');
      } catch {
        // gone already
      }
      await running.exited;
    }
    if (running) rmSync(running.dataDir, { recursive: true, force: true });
    running = undefined;
  });

  it('one Ctrl-C (SIGINT to the whole process group) drains every service exactly once, then stops nats', async () => {
    const services = discoverServices().map((s) => s.name);
    assert.ok(services.length >= 4, `services are built: ${services.join(', ')}`);
    running = launch({});
    const r = running;
    await waitFor(() => services.every((s) => new RegExp(`✔ ${s} `).test(r.output())), { what: `every service ready (${services.join(', ')})`, timeoutMs: 120_000 })
      .catch((err: Error) => { throw new Error(`${err.message}\n${r.output().slice(-3000)}`); });
    process.kill(-r.child.pid!, 'SIGINT'); // what the terminal does on Ctrl-C
    assert.equal(await r.exited, 0, r.output().slice(-3000));
    const output = r.output();
    for (const s of services) {
      assert.equal(linesOf(output, s, 'stopping: draining work in flight').length, 1, `${s} began draining once:\n${output.slice(-3000)}`);
      assert.equal(linesOf(output, s, 'stopped cleanly').length, 1, `${s} drained cleanly:\n${output.slice(-3000)}`);
      assert.match(linesOf(output, s, 'stopping: draining work in flight')[0]!, /"signal":"SIGTERM"/, `${s} got the launcher's one SIGTERM`);
    }
    assert.doesNotMatch(output, /second signal|exited \(|starting it again/);
    assert.match(output, /stopped\.\n?$/);
  });

  it('a service failing on its configuration is started again with backoff, then given up with its error shown', async () => {
    running = launch({ BUS_UP_SERVICES: 'ingest', INGEST_MAX_BODY_BYTES: '1', BUS_UP_BACKOFF_MS: '50', BUS_UP_MAX_FAILED_STARTS: '3' });
    const r = running;
    await waitFor(() => /ingest failed to start 3 times in a row/.test(r.output()), { what: 'the launcher gives ingest up', timeoutMs: 90_000 })
      .catch((err: Error) => { throw new Error(`${err.message}\n${r.output().slice(-3000)}`); });
    const output = r.output();
    assert.match(output, /ingest exited before it was ready \(code 1\); starting it again in 50 ms \(failed start 1 of 3\)/);
    assert.match(output, /starting it again in 100 ms \(failed start 2 of 3\)/);
    assert.match(output, /Its last error:\n {2}\[CONFIG_INVALID\] configuration is invalid[\s\S]*INGEST_MAX_BODY_BYTES/);
    process.kill(-r.child.pid!, 'SIGINT');
    assert.equal(await r.exited, 0);
    assert.equal(/failed start 3 of 3|starting it again in 200 ms/.test(r.output()), false, 'no fourth start');
  });

  it('lastError shows the last error or fatal log line, else the last lines', () => {
    assert.equal(lastError(['{"level":30,"msg":"starting"}', '{"level":60,"msg":"[CONFIG_INVALID] bad"}', 'plain']), '[CONFIG_INVALID] bad');
    assert.equal(lastError(['Error: x', '    at y']), 'Error: x\n    at y');
    assert.equal(lastError([]), '(it printed nothing)');
  });
});
