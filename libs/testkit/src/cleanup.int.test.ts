import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { describe, it } from 'node:test';
import { connect } from '@nats-io/transport-node';
import { startProcess, waitFor } from './index.js';

const skip = process.env.NATS_URL ? 'NATS_URL is set: the kit would not spawn a server to leave behind' : false;
const index = new URL('./index.js', import.meta.url).href;

/** A test process that starts a server and a worker, then ends as `how` says. */
function suite(how: 'exit' | 'wait') {
  const script = `
    const { startNats, startProcess } = await import(${JSON.stringify(index)});
    const nats = await startNats();
    const worker = startProcess({ command: process.execPath, args: ['-e', 'setInterval(() => {}, 1000)'] });
    console.log('started ' + JSON.stringify({ url: nats.url, storeDir: nats.storeDir, worker: worker.pid }));
    if (${JSON.stringify(how)} === 'exit') process.exit(0); else setInterval(() => {}, 1000);`;
  return startProcess({ command: process.execPath, args: ['--input-type=module', '-e', script] });
}

const gone = (pid: number) => {
  try {
    process.kill(pid, 0);
    return false;
  } catch {
    return true;
  }
};
const refused = async (url: string) => {
  try {
    await (await connect({ servers: url, reconnect: false, timeout: 500 })).close();
    return false;
  } catch {
    return true;
  }
};

describe('no orphans: what a test process starts ends with it', { skip }, () => {
  for (const [how, ending, expected] of [
    ['exit', 'exits without stopping anything', { code: 0, signal: null }],
    ['wait', 'is stopped with SIGTERM (a hung test)', { code: null, signal: 'SIGTERM' }],
  ] as const) {
    it(`when the test process ${ending}, its server, worker and store go too`, async () => {
      const p = suite(how);
      const m = await p.waitForOutput(/started (\{.*\})/, 'the suite to start a server and a worker');
      const started = JSON.parse(m[1]!) as { url: string; storeDir: string; worker: number };
      if (how === 'wait') p.kill('SIGTERM');
      assert.deepEqual(await p.exited, expected);
      await waitFor(() => refused(started.url), { what: `the server at ${started.url} to be gone` });
      await waitFor(() => gone(started.worker), { what: `worker ${started.worker} to be gone` });
      await waitFor(() => !existsSync(started.storeDir), { what: `${started.storeDir} to be removed` });
    });
  }
});
