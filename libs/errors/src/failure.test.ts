import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BusError, classifyHttp, describeError, failureClassOf } from './index.js';

describe('errors', () => {
  it('a BusError names its code in the message and keeps its class', () => {
    const err = new BusError('X_FAILED', 'business', 'x failed for y; fix z');
    assert.equal(err.message, '[X_FAILED] x failed for y; fix z');
    assert.equal(err.failureClass, 'business');
    assert.equal(err.retryable, false);
    assert.equal(failureClassOf(err), 'business');
  });

  it('anything that is not a BusError is a permanent, unexpected failure', () => {
    assert.equal(failureClassOf(new TypeError('boom')), 'permanent');
    assert.deepEqual(describeError('str'), { code: 'UNEXPECTED', failureClass: 'permanent', message: 'str' });
  });

  it('classifies HTTP outcomes by status and whether the request was sent', () => {
    assert.equal(classifyHttp(undefined, false), 'transient');
    assert.equal(classifyHttp(undefined, true), 'ambiguous');
    assert.equal(classifyHttp(503, true), 'transient');
    assert.equal(classifyHttp(429, true), 'transient');
    assert.equal(classifyHttp(422, true), 'business');
    assert.equal(classifyHttp(409, true), 'business');
    assert.equal(classifyHttp(401, true), 'permanent');
    assert.equal(classifyHttp(403, true), 'permanent');
  });
});
