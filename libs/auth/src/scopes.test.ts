import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { missingScopes, scopeProblem } from './scopes.js';

describe('missingScopes', () => {
  it('names each required scope the token lacks, in the declared order', () => {
    assert.deepEqual(missingScopes(['crm.write', 'crm.read', 'orders'], ['crm.read']), ['crm.write', 'orders']);
  });
  it('nothing missing when every one is granted, or none is required', () => {
    assert.deepEqual(missingScopes(['a', 'b'], ['b', 'a', 'c']), []);
    assert.deepEqual(missingScopes(undefined, ['a']), []);
    assert.deepEqual(missingScopes([], []), []);
  });
  it('an empty grant lacks everything; an unknown grant is not checked', () => {
    assert.deepEqual(missingScopes(['a'], []), ['a']);
    assert.deepEqual(missingScopes(['a'], undefined), []);
  });
  it('the message names connector, scope, what was granted and what to do', () => {
    const m = scopeProblem('crm', ['crm.write'], ['crm.read']);
    assert.match(m, /^\[AUTH_SCOPE_MISSING\] connector "crm".*required scope crm\.write \(granted: crm\.read\); nothing is sent/);
  });
});
