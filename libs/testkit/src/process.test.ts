import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { startProcess } from './index.js';

const node = (script: string) => startProcess({ command: process.execPath, args: ['-e', script] });

describe('startProcess', () => {
  it('captures stdout and stderr, and reports a SIGKILL exit', async () => {
    const p = node('console.log("ready " + process.pid); console.error("warming up"); setInterval(() => {}, 1000)');
    const m = await p.waitForOutput(/ready (\d+)/, 'the child to start');
    assert.equal(Number(m[1]), p.pid);
    await p.waitForOutput(/warming up/, 'stderr too (a separate pipe: it may arrive after stdout)');
    p.kill('SIGKILL');
    assert.deepEqual(await p.exited, { code: null, signal: 'SIGKILL' });
  });

  it('passes env and reports the exit code', async () => {
    const p = startProcess({ command: process.execPath, args: ['-e', 'console.log(process.env.GREETING); process.exit(3)'], env: { GREETING: 'hej' } });
    assert.deepEqual(await p.exited, { code: 3, signal: null });
    await p.waitForOutput(/hej/, 'the greeting');
  });

  it('waitForOutput fails as soon as the process exits without printing it, with the last output', async () => {
    const p = node('console.log("config invalid: PORT"); process.exit(1)');
    await assert.rejects(p.waitForOutput(/listening/, 'it to listen', 10_000),
      /exited \(code 1, signal null\) before it to listen.*config invalid: PORT/s);
  });

  it('waitForOutput times out naming what it waited for, with the last lines of output', async () => {
    const p = node('console.log("still booting"); setInterval(() => {}, 1000)');
    try {
      await assert.rejects(p.waitForOutput(/ready/, 'the ready line', 300),
        /timed out after 300ms waiting for the ready line\nlast output of .*\nstill booting/);
    } finally {
      p.kill('SIGKILL');
      await p.exited;
    }
  });

  it('a command that does not exist exits at once and says why', async () => {
    const p = startProcess({ command: '/nonexistent/worker' });
    assert.deepEqual(await p.exited, { code: null, signal: null });
    assert.equal(p.pid, 0);
    assert.match(p.output(), /ENOENT/);
  });
});
