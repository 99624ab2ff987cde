import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { serverAtLeast, serverCaveats } from './server-caveats.js';

describe('serverCaveats', () => {
  it('a cluster on a server before 2.9.21: compare-and-set is not serialized (nats-server#4320), with what to do', () => {
    const [c, ...rest] = serverCaveats('2.9.10', 3);
    assert.equal(rest.length, 0);
    assert.match(c!, /2\.9\.10.*2\.9\.21.*#4320.*Upgrade/);
  });
  it('nothing for a single server, a fixed version, or an unknown one', () => {
    assert.deepEqual(serverCaveats('2.9.10', 1), []);
    for (const v of ['2.9.21', '2.9.25', '2.10.0', '2.11.4', '3.0.0']) assert.deepEqual(serverCaveats(v, 3), [], v);
    assert.deepEqual(serverCaveats(undefined, 3), []);
    assert.equal(serverCaveats('2.9.20-beta', 3).length, 1);
  });
  it('serverAtLeast compares major, minor and patch as numbers', () => {
    assert.equal(serverAtLeast('2.10.0', 2, 9, 21), true);
    assert.equal(serverAtLeast('2.9.9', 2, 9, 21), false);
    assert.equal(serverAtLeast('2.11.0', 2, 11), true);
    assert.equal(serverAtLeast('2.10.22', 2, 11), false);
    assert.equal(serverAtLeast('3.0.0', 2, 11), true);
    assert.equal(serverAtLeast('unknown', 2, 11), false);
  });
});
