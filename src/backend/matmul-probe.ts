/** Measures fp32 matmul throughput on the current tfjs backend (doctor, bench). */
import { tf } from './tf.ts';
import { Rng } from '../util/random.ts';

export interface MatmulMeasure {
  /** Square size: [n, n] × [n, n]. */
  n: number;
  /** Timed repetitions (after one warm-up). */
  reps: number;
  /** Fastest repetition, ms, including reading the result back. */
  bestMs: number;
  medianMs: number;
  /** 2·n³ / best time. */
  gflops: number;
  medianGflops: number;
}

export interface MatmulOptions {
  /** Keep repeating until this much time was spent timing (default 300 ms)... */
  minMs?: number;
  /** ...with at least this many repetitions (default 2)... */
  minReps?: number;
  /** ...and at most this many (default 10). */
  maxReps?: number;
  seed?: number;
}

export function measureMatmul(n: number, opts: MatmulOptions = {}): MatmulMeasure {
  const { minMs = 300, minReps = 2, maxReps = 10, seed = 1 } = opts;
  const rng = new Rng(seed).split('matmul-probe');
  const a = tf.tensor2d(rng.fillUniform(new Float32Array(n * n), -1, 1), [n, n]); // [n, n]
  const b = tf.tensor2d(rng.fillUniform(new Float32Array(n * n), -1, 1), [n, n]); // [n, n]
  const once = (): number => {
    const t0 = performance.now();
    const c = tf.matMul(a, b);
    c.dataSync();
    const ms = performance.now() - t0;
    c.dispose();
    return ms;
  };
  try {
    once(); // warm-up: first call builds the XNNPACK operator / pages memory in
    const times: number[] = [];
    let spent = 0;
    while (times.length < maxReps && (times.length < minReps || spent < minMs)) {
      const ms = once();
      times.push(ms);
      spent += ms;
    }
    times.sort((x, y) => x - y);
    const bestMs = times[0]!;
    const medianMs = times[Math.floor(times.length / 2)]!;
    const flop = 2 * n ** 3;
    return { n, reps: times.length, bestMs, medianMs, gflops: flop / bestMs / 1e6, medianGflops: flop / medianMs / 1e6 };
  } finally {
    a.dispose();
    b.dispose();
  }
}
