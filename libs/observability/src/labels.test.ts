import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { labelFolder, OTHER_LABEL } from './labels.js';

describe('labelFolder', () => {
  it('keeps known values, admits up to cap others, folds the rest into other — whatever the input', () => {
    const fold = labelFolder(['order.created'], 2);
    assert.equal(fold('order.created'), 'order.created');
    assert.equal(fold('a'), 'a');
    assert.equal(fold('b'), 'b');
    assert.equal(fold('a'), 'a', 'an admitted value keeps its name');
    const seen = new Set(Array.from({ length: 10_000 }, (_, i) => fold(`junk-${i}`)));
    assert.deepEqual([...seen], [OTHER_LABEL]);
    assert.equal(labelFolder([])('x'), OTHER_LABEL, 'cap 0: only known values');
  });
});
