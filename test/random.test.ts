import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../src/util/random.ts';

test('same seed gives the same stream; another seed another', () => {
  const a = new Rng(42), b = new Rng(42), c = new Rng(43);
  const xa = Array.from({ length: 100 }, () => a.nextU32());
  const xb = Array.from({ length: 100 }, () => b.nextU32());
  const xc = Array.from({ length: 100 }, () => c.nextU32());
  assert.deepEqual(xa, xb);
  assert.notDeepEqual(xa, xc);
});

test('split streams are independent of draws in other purposes', () => {
  const root1 = new Rng(7), root2 = new Rng(7);
  const init1 = root1.split('init');
  const data2 = root2.split('data');
  for (let i = 0; i < 50; i++) data2.uniform();
  const init2 = root2.split('init');
  assert.deepEqual(Array.from({ length: 20 }, () => init1.uniform()), Array.from({ length: 20 }, () => init2.uniform()));
  assert.notDeepEqual(
    Array.from({ length: 20 }, () => new Rng(7).split('init').uniform()),
    Array.from({ length: 20 }, () => new Rng(7).split('dropout').uniform()),
  );
});

test('state round trip resumes exactly, normals included', () => {
  const r = new Rng(1);
  for (let i = 0; i < 13; i++) r.normal();
  const saved = r.state();
  const after = Array.from({ length: 10 }, () => r.normal());
  const resumed = new Rng(saved);
  assert.deepEqual(Array.from({ length: 10 }, () => resumed.normal()), after);
});

test('uniform and normal have the right moments', () => {
  const r = new Rng(3);
  const n = 20000;
  let su = 0, sn = 0, sn2 = 0;
  for (let i = 0; i < n; i++) {
    su += r.uniform();
    const z = r.normal();
    sn += z;
    sn2 += z * z;
  }
  assert.ok(Math.abs(su / n - 0.5) < 0.01, `uniform mean ${su / n}`);
  assert.ok(Math.abs(sn / n) < 0.03, `normal mean ${sn / n}`);
  assert.ok(Math.abs(sn2 / n - 1) < 0.05, `normal var ${sn2 / n}`);
});
