import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { newEventId } from './ids.js';

describe('newEventId', () => {
  it('is a UUIDv7, unique and increasing within one process even many per millisecond (random bytes drawn in pools)', () => {
    const ids = Array.from({ length: 5_000 }, () => newEventId()); // more than one pool of 256, most in the same millisecond
    assert.equal(new Set(ids).size, ids.length);
    for (const id of ids) assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    for (let i = 1; i < ids.length; i++) assert.ok(ids[i]! > ids[i - 1]!, `${ids[i - 1]} then ${ids[i]}`);
    const ms = Number.parseInt(ids.at(-1)!.replace('-', '').slice(0, 12), 16);
    assert.ok(Math.abs(ms - Date.now()) < 5_000, 'the time part is now');
  });
});
