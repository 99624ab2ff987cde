import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { appendAttempt, type AttemptRecord, attemptsMade, continueHistory, MAX_HISTORY_RECORDS, MAX_RECORD_MESSAGE_CHARS, type RetryHistory } from './index.js';

const at = '2026-11-25T12:00:00.000Z';

describe('retry history', () => {
  it('appends without changing the input, numbering attempts from 1', () => {
    const empty: RetryHistory = [];
    const one = appendAttempt(empty, { failureClass: 'transient', status: 503, delayMs: 500, at });
    const two = appendAttempt(one, { failureClass: 'ok', status: 200, at, durationMs: 12 });
    assert.deepEqual(empty, []);
    assert.equal(one.length, 1);
    assert.deepEqual(two.map((r) => r.attempt), [1, 2]);
    assert.deepEqual(two[0], { failureClass: 'transient', status: 503, delayMs: 500, at, attempt: 1 });
  });

  it('keeps only the newest 50 records by default, yet counts every attempt', () => {
    assert.equal(MAX_HISTORY_RECORDS, 50);
    let h: AttemptRecord[] = [];
    for (let i = 0; i < 120; i++) h = appendAttempt(h, { failureClass: 'transient', at });
    assert.equal(h.length, 50);
    assert.equal(h[0]!.attempt, 71);
    assert.equal(attemptsMade(h), 120);
  });

  it('a smaller bound can be given; it must be a whole number >= 1', () => {
    let h: AttemptRecord[] = [];
    for (let i = 0; i < 5; i++) h = appendAttempt(h, { failureClass: 'ambiguous', at }, 2);
    assert.deepEqual(h.map((r) => r.attempt), [4, 5]);
    assert.throws(() => appendAttempt([], { failureClass: 'ok', at }, 0), /RETRY_HISTORY_INVALID.*maxRecords/);
  });

  it('given attempt numbers must increase (they carry the total); gaps are fine', () => {
    const h = appendAttempt([], { attempt: 3, failureClass: 'transient', at });
    assert.equal(attemptsMade(appendAttempt(h, { attempt: 7, failureClass: 'transient', at })), 7);
    assert.throws(() => appendAttempt(h, { attempt: 3, failureClass: 'transient', at }), /RETRY_HISTORY_INVALID.*above the last one \(3\), got 3/);
    assert.throws(() => appendAttempt(h, { attempt: 2.5, failureClass: 'transient', at }), /RETRY_HISTORY_INVALID/);
  });

  it('a huge error text is cut, so the history stays small', () => {
    const [r] = appendAttempt([], { failureClass: 'business', message: 'x'.repeat(1_000_000), at });
    assert.equal(r!.message!.length, MAX_RECORD_MESSAGE_CHARS);
    assert.ok(r!.message!.endsWith('…'));
  });

  it('an empty history has made no attempts', () => {
    assert.equal(attemptsMade([]), 0);
  });

  it('continueHistory: a later round is numbered on after the earlier one, bounded, inputs unchanged', () => {
    let earlier: AttemptRecord[] = [];
    for (let i = 0; i < 8; i++) earlier = appendAttempt(earlier, { failureClass: 'transient', at });
    const later = appendAttempt(appendAttempt([], { failureClass: 'transient', at }), { failureClass: 'business', at });
    const both = continueHistory(earlier, later);
    assert.deepEqual(both.map((r) => r.attempt), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    assert.deepEqual(later.map((r) => r.attempt), [1, 2]);
    assert.equal(earlier.length, 8);
    let long: AttemptRecord[] = [];
    for (let i = 0; i < 49; i++) long = appendAttempt(long, { failureClass: 'transient', at });
    const capped = continueHistory(long, later, MAX_HISTORY_RECORDS);
    assert.equal(capped.length, MAX_HISTORY_RECORDS);
    assert.equal(attemptsMade(capped), 51);
    assert.deepEqual(continueHistory([], later), later);
  });
});
