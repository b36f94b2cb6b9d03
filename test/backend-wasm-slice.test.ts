/**
 * The wasm backend's Slice and SplitV read their input in place (src/backend/wasm-slice.ts): the same
 * values as tfjs's cpu backend for random slices of ranks 1–5 (contiguous and strided, empty pieces),
 * float32, int32 and bool, splits by count and by sizes with -1 and negative axes; strings go to the
 * original Slice; gradients through slice and split unchanged; no tensor leaks.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../src/backend/tf.ts';
import { initBackend } from '../src/backend/index.ts';
import { wasmSliceInstalled } from '../src/backend/wasm-slice.ts';
import { Rng } from '../src/util/random.ts';

before(async () => {
  await initBackend({ backend: 'wasm' });
});

const rng = new Rng(7).split('wasm-slice');
const int = (lo: number, hi: number) => lo + Math.floor(rng.uniform() * (hi - lo + 1));

/** Runs f on wasm, then on cpu with the same inputs (as plain arrays), and compares every output. */
function sameOnCpu(values: { data: number[] | boolean[]; shape: number[]; dtype: tf.DataType }, f: (x: tf.Tensor) => tf.Tensor | tf.Tensor[], what: string): void {
  const run = (backend: string) => {
    tf.setBackend(backend);
    return tf.tidy(() => {
      const x = tf.tensor(values.data as number[], values.shape, values.dtype);
      const out = f(x);
      return (Array.isArray(out) ? out : [out]).map((t) => ({ shape: t.shape, dtype: t.dtype, data: Array.from(t.dataSync() as ArrayLike<number>) }));
    });
  };
  const got = run('wasm');
  const want = run('cpu');
  tf.setBackend('wasm');
  assert.deepEqual(got, want, what);
}

function randomTensor(shape: number[], dtype: 'float32' | 'int32' | 'bool') {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = Array.from({ length: n }, () => (dtype === 'bool' ? rng.uniform() < 0.5 : dtype === 'int32' ? int(-1000, 1000) : rng.uniform() * 2 - 1));
  return { data: data as number[] | boolean[], shape, dtype };
}

test('initBackend installs the in-place wasm Slice and SplitV', () => {
  assert.equal(tf.getBackend(), 'wasm');
  assert.ok(wasmSliceInstalled());
});

test('slice: random begins and sizes, ranks 1-5, three dtypes, equal to the cpu backend', () => {
  let checked = 0;
  for (let rank = 1; rank <= 5; rank++) {
    for (const dtype of ['float32', 'int32', 'bool'] as const) {
      for (let k = 0; k < 12; k++) {
        const shape = Array.from({ length: rank }, () => int(1, rank >= 4 ? 4 : 7));
        const begin = shape.map((d) => int(0, d - 1));
        // Sizes: sometimes the rest of the dim (-1 or exact), sometimes a part, sometimes empty.
        const size = shape.map((d, i) => {
          const r = rng.uniform();
          return r < 0.25 ? -1 : r < 0.45 ? d - begin[i]! : r < 0.5 ? 0 : int(1, d - begin[i]!);
        });
        const x = randomTensor(shape, dtype);
        sameOnCpu(x, (t) => tf.slice(t, begin, size), `slice ${dtype} [${shape}] begin [${begin}] size [${size}]`);
        checked++;
      }
      // Whole trailing dims (the contiguous case) and the first element only.
      const shape = Array.from({ length: rank }, () => int(2, 4));
      sameOnCpu(randomTensor(shape, dtype), (t) => tf.slice(t, [1, ...shape.slice(1).map(() => 0)], [1, ...shape.slice(1)]), `contiguous ${dtype} [${shape}]`);
    }
  }
  assert.equal(checked, 5 * 3 * 12);
});

test('split: counts, sizes with -1, negative axes, ranks 1-4, equal to the cpu backend', () => {
  for (let rank = 1; rank <= 4; rank++) {
    for (const dtype of ['float32', 'int32', 'bool'] as const) {
      for (let axis = -rank; axis < rank; axis++) {
        const shape = Array.from({ length: rank }, () => int(1, 5));
        const ax = axis < 0 ? axis + rank : axis;
        shape[ax] = 6;
        const x = randomTensor(shape, dtype);
        sameOnCpu(x, (t) => tf.split(t, 3, axis), `split 3 ${dtype} [${shape}] axis ${axis}`);
        sameOnCpu(x, (t) => tf.split(t, [1, -1, 2], axis), `split [1,-1,2] ${dtype} [${shape}] axis ${axis}`);
        sameOnCpu(x, (t) => tf.split(t, [0, 6], axis), `split [0,6] ${dtype} [${shape}] axis ${axis}`);
      }
    }
  }
});

test('strings go to the original Slice (tf.split takes no strings)', () => {
  const s = tf.tensor(['a', 'b', 'c', 'd', 'e', 'f'], [2, 3], 'string');
  assert.deepEqual(tf.slice(s, [0, 1], [2, 2]).arraySync(), [['b', 'c'], ['e', 'f']]);
  s.dispose();
});

test('gradients through slice and split match the cpu backend; no leaks', () => {
  const x = randomTensor([4, 6, 5], 'float32');
  const f = (t: tf.Tensor) => {
    const [a, b] = tf.split(t, [2, 4], 1);
    return tf.add(tf.sum(tf.mul(tf.slice(a!, [1, 0, 1], [2, 2, 3]), 3)), tf.sum(tf.square(tf.slice(b!, [0, 1, 0], [4, 2, -1]))));
  };
  sameOnCpu(x, (t) => tf.grad(f)(t), 'gradient');
  const before = tf.memory().numTensors;
  const t = tf.tensor(x.data as number[], x.shape);
  for (let i = 0; i < 3; i++) tf.tidy(() => void tf.grad(f)(t));
  t.dispose();
  assert.equal(tf.memory().numTensors, before);
});
