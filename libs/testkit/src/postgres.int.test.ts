import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { describe, it } from 'node:test';
import { findPostgresBin, startPostgres, testPgUrl } from './index.js';

/** True when something accepts TCP connections on host:port. */
const accepts = (port: number) => new Promise<boolean>((resolve) => {
  const s = connect(port, '127.0.0.1');
  s.once('connect', () => { s.destroy(); resolve(true); });
  s.once('error', () => resolve(false));
});

describe('testkit: a private PostgreSQL', { skip: findPostgresBin() ? false : 'no PostgreSQL server binaries (bash scripts/bootstrap.sh installs them)' }, () => {
  it('starts on a free loopback port, is shared by testPgUrl without TEST_PG_URL, and stops', async () => {
    const saved = process.env.TEST_PG_URL;
    delete process.env.TEST_PG_URL;
    try {
      const a = await testPgUrl();
      assert.equal(await testPgUrl(), a, 'one server per test process');
      const port = Number(new URL(a).port);
      assert.notEqual(port, 5432);
      assert.equal(await accepts(port), true);
    } finally {
      if (saved !== undefined) process.env.TEST_PG_URL = saved;
    }
    const own = await startPostgres();
    const port = Number(new URL(own.url).port);
    assert.equal(await accepts(port), true);
    await own.stop();
    assert.equal(await accepts(port), false, 'stopped');
  });

  it('TEST_PG_URL set → that URL, nothing started', async () => {
    const saved = process.env.TEST_PG_URL;
    process.env.TEST_PG_URL = 'postgres://someone@127.0.0.1:1/elsewhere';
    try {
      assert.equal(await testPgUrl(), 'postgres://someone@127.0.0.1:1/elsewhere');
    } finally {
      if (saved === undefined) delete process.env.TEST_PG_URL;
      else process.env.TEST_PG_URL = saved;
    }
  });
});
