/**
 * Linear-layer forward throughput on the wasm backend: float32, int8 (weight-only and LLM.int8 with
 * outlier threshold 6), NF4 (plain and double-quantized), for x [128 × 3072] · Wᵀ with W [3072 × 3072]
 * (a Phi-3-mini o_proj). Quantized layers dequantize W on every call, so their time includes that.
 * Also times one forward+backward (input gradient) per kind.
 *
 * Run alone: `node --import tsx bench/quant.ts` (prints the rows as JSON).
 */
import { tf } from '../src/backend/tf.ts';
import { initBackend } from '../src/backend/index.ts';
import { quantizeLinear, type QuantizeLinearOptions } from '../src/kernels/quant-linear.ts';
import { Rng } from '../src/util/random.ts';

export async function run(opts: { n?: number; k?: number; m?: number; reps?: number } = {}): Promise<Array<Record<string, number | string>>> {
  const info = await initBackend({ backend: 'wasm' });
  const N = opts.n ?? 128;
  const K = opts.k ?? 3072;
  const M = opts.m ?? 3072;
  const reps = opts.reps ?? 3;
  const rng = new Rng(0);
  const w = rng.fillNormal(new Float32Array(M * K), 0.02);
  const xData = rng.fillNormal(new Float32Array(N * K), 1);
  const x = tf.tensor2d(xData, [N, K]);
  const flops = 2 * N * K * M;
  const kinds: Array<[string, QuantizeLinearOptions]> = [
    ['float32', { quant: 'none' }],
    ['int8 (weight-only)', { quant: 'int8', threshold: 0 }],
    ['int8 (LLM.int8, threshold 6)', { quant: 'int8', threshold: 6 }],
    ['nf4', { quant: 'nf4' }],
    ['nf4 (double quant)', { quant: 'nf4', doubleQuant: true }],
  ];
  const rows: Array<Record<string, number | string>> = [];
  for (const [name, q] of kinds) {
    const layer = quantizeLinear(w, M, K, q);
    const fwd = (): void => {
      const y = layer.apply(x);
      y.dataSync();
      y.dispose();
    };
    const fwdBwd = (): void => {
      const g = tf.grad((t: tf.Tensor) => tf.sum(layer.apply(t as tf.Tensor2D)))(x);
      g.dataSync();
      g.dispose();
    };
    fwd(); // warm-up (wasm compiles kernels lazily)
    const t0 = performance.now();
    for (let i = 0; i < reps; i++) fwd();
    const msFwd = (performance.now() - t0) / reps;
    fwdBwd();
    const t1 = performance.now();
    for (let i = 0; i < reps; i++) fwdBwd();
    const msFwdBwd = (performance.now() - t1) / reps;
    rows.push({
      bench: 'quant-linear',
      backend: info.name,
      threads: info.threads,
      kind: name,
      shape: `[${N}x${K}]·[${K}x${M}]`,
      bytes_per_weight: Number((layer.bytes() / (M * K)).toFixed(4)),
      forward_ms: Number(msFwd.toFixed(1)),
      forward_gflops: Number((flops / msFwd / 1e6).toFixed(2)),
      fwd_bwd_ms: Number(msFwdBwd.toFixed(1)),
      fwd_bwd_gflops: Number(((2 * flops) / msFwdBwd / 1e6).toFixed(2)),
    });
    layer.dispose();
  }
  x.dispose();
  return rows;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  run().then((rows) => console.log(JSON.stringify(rows, null, 2)));
}
