import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PIPELINE_NODE_FLAGS, serviceNodeFlags } from './node-flags.js';

describe('serviceNodeFlags: the heap flags a launcher starts a service with', () => {
  it('ingest, transform and deliver get the bounded heap; reconcile (state grows with entities) gets Node defaults', () => {
    for (const s of ['ingest', 'transform', 'deliver']) assert.deepEqual(serviceNodeFlags(s, {}), [...PIPELINE_NODE_FLAGS]);
    assert.deepEqual(serviceNodeFlags('reconcile', {}), []);
  });

  it('BUS_SERVICE_NODE_FLAGS replaces them for every service; empty means Node defaults', () => {
    assert.deepEqual(serviceNodeFlags('deliver', { BUS_SERVICE_NODE_FLAGS: ' --max-old-space-size=256  --max-semi-space-size=8 ' }),
      ['--max-old-space-size=256', '--max-semi-space-size=8']);
    assert.deepEqual(serviceNodeFlags('reconcile', { BUS_SERVICE_NODE_FLAGS: '--max-old-space-size=512' }), ['--max-old-space-size=512']);
    assert.deepEqual(serviceNodeFlags('deliver', { BUS_SERVICE_NODE_FLAGS: '' }), []);
  });
});
