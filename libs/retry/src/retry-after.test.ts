import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseHttpDate, parseRateLimitReset, parseRetryAfter } from './index.js';

const now = Date.parse('2026-11-25T12:00:00Z');

describe('Retry-After header', () => {
  it('delta-seconds → ms', () => {
    assert.equal(parseRetryAfter('120', now), 120_000);
    assert.equal(parseRetryAfter(' 0 ', now), 0);
  });

  it('HTTP-date (IMF-fixdate) → ms from now; a past date → 0', () => {
    assert.equal(parseRetryAfter('Wed, 25 Nov 2026 12:00:30 GMT', now), 30_000);
    assert.equal(parseRetryAfter('Wed, 25 Nov 2026 11:00:00 GMT', now), 0);
  });

  it('the obsolete RFC 850 and asctime forms, read as UTC', () => {
    assert.equal(parseRetryAfter('Wednesday, 25-Nov-26 12:01:00 GMT', now), 60_000);
    assert.equal(parseRetryAfter('Wed Nov 25 12:00:10 2026', now), 10_000);
    assert.equal(parseHttpDate('Sun Nov  6 08:49:37 1994', now), Date.parse('1994-11-06T08:49:37Z'));
    assert.equal(parseHttpDate('Sunday, 06-Nov-94 08:49:37 GMT', now), Date.parse('1994-11-06T08:49:37Z'), 'two-digit year: the past century');
  });

  it('garbage → undefined, so the retry policy applies', () => {
    for (const bad of ['soon', '-5', '1.5', '10, 20', '', '   ', '2026-11-25T12:00:30Z', 'Wed, 31 Feb 2026 12:00:00 GMT',
      'Wed, 25 Nov 2026 25:00:00 GMT', 'Wed, 25 Foo 2026 12:00:00 GMT', 'hello 2026', '9'.repeat(400)])
      assert.equal(parseRetryAfter(bad, now), undefined, JSON.stringify(bad));
    assert.equal(parseRetryAfter(undefined, now), undefined);
    assert.equal(parseRetryAfter(null, now), undefined, 'Headers.get gives null when absent');
  });

  it('reads against the real clock when no time is given', () => {
    const inOneMinute = new Date(Date.now() + 60_000).toUTCString();
    const ms = parseRetryAfter(inOneMinute);
    assert.ok(ms !== undefined && ms > 55_000 && ms <= 60_000, String(ms));
  });
});

describe('rate-limit headers', () => {
  it('delta seconds (IETF draft RateLimit-Reset) and remaining', () => {
    assert.deepEqual(parseRateLimitReset(new Headers({ 'RateLimit-Remaining': '3', 'RateLimit-Reset': '30' }), now), { remaining: 3, resetMs: 30_000 });
    assert.deepEqual(parseRateLimitReset({ 'x-ratelimit-reset': '1.5' }, now), { remaining: undefined, resetMs: 1_500 });
  });

  it('epoch seconds (GitHub X-RateLimit-Reset) → ms from now; past → 0', () => {
    const h = { 'X-RateLimit-Remaining': '0', 'X-RateLimit-Reset': String(now / 1000 + 90) };
    assert.deepEqual(parseRateLimitReset(h, now), { remaining: 0, resetMs: 90_000 });
    assert.equal(parseRateLimitReset({ 'x-ratelimit-reset': String(now / 1000 - 90) }, now).resetMs, 0);
  });

  it('epoch milliseconds and HTTP-dates are read too', () => {
    assert.equal(parseRateLimitReset({ 'x-ratelimit-reset': String(now + 5_000) }, now).resetMs, 5_000);
    assert.equal(parseRateLimitReset({ 'x-ratelimit-reset': 'Wed, 25 Nov 2026 12:00:30 GMT' }, now).resetMs, 30_000);
  });

  it('the unprefixed (IETF) header wins over the X- one; any key case; node\'s array values', () => {
    const h = { 'ratelimit-reset': '10', 'X-RATELIMIT-RESET': '99', 'x-ratelimit-remaining': ['7', '8'] };
    assert.deepEqual(parseRateLimitReset(h, now), { remaining: 7, resetMs: 10_000 });
  });

  it('absent or garbage → undefined fields', () => {
    assert.deepEqual(parseRateLimitReset(new Headers(), now), { remaining: undefined, resetMs: undefined });
    assert.deepEqual(parseRateLimitReset({ 'x-ratelimit-remaining': '-1', 'x-ratelimit-reset': 'later' }, now),
      { remaining: undefined, resetMs: undefined });
    assert.deepEqual(parseRateLimitReset({ 'x-ratelimit-remaining': '2.5', 'x-ratelimit-reset': '' }, now),
      { remaining: undefined, resetMs: undefined });
  });
});
