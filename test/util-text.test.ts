import { test } from 'node:test';
import assert from 'node:assert/strict';
import { editDistance } from '../src/util/text.ts';

test('edit distance on hand-worked pairs', () => {
  assert.equal(editDistance('', ''), 0);
  assert.equal(editDistance('abc', ''), 3);
  assert.equal(editDistance('', 'ab'), 2);
  assert.equal(editDistance('kitten', 'sitting'), 3);
  assert.equal(editDistance('doctor', 'docter'), 1);
  assert.equal(editDistance('train', 'tarin'), 2);
  assert.equal(editDistance('runs', 'runs'), 0);
});
