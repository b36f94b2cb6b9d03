/**
 * phi3-nano throughput on the wasm backend, batch 4 × 256 tokens:
 *   forward            logits [4, 256, 32064]
 *   fwd+bwd pretrain   every weight trainable, loss on every next token
 *   fwd+bwd frozen     frozen base, gradient to the input embedding through every layer (the LoRA
 *                      pattern, without adapters), loss on the last 32 tokens of each row; with the
 *                      lm_head only at targets (default) and at all positions, to show the saving
 * Each case: one warm-up, then BENCH_REPS (default 2) timed runs; the median is reported.
 */
import { tf } from '../src/backend/tf.ts';
import { initBackend } from '../src/backend/index.ts';
import { Rng } from '../src/util/random.ts';
import { getPreset } from '../src/model/config.ts';
import { initPhi3 } from '../src/model/init.ts';
import type { Phi3ForCausalLM, Phi3Options } from '../src/model/phi3.ts';
import type { LossOptions } from '../src/model/loss.ts';

const B = 4;
const T = 256;
const ANSWER = 32;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function time(reps: number, fn: () => void): number {
  fn();
  const ms: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    fn();
    ms.push(performance.now() - t0);
  }
  return median(ms);
}

export async function run(): Promise<Array<Record<string, number | string>>> {
  const info = await initBackend({ backend: 'wasm' });
  const reps = Number(process.env.BENCH_REPS ?? 2);
  const c = getPreset('phi3-nano');
  const rng = new Rng(1);
  const ids = Array.from({ length: B }, () => Array.from({ length: T }, () => rng.int(c.vocabSize)));
  const allLabels = ids.map((r) => r.map((_, t) => (t > 0 ? 1 : 0)));
  const answerLabels = ids.map((r) => r.map((_, t) => (t >= T - ANSWER ? 1 : 0)));
  const rows: Array<Record<string, number | string>> = [];
  const record = (name: string, ms: number, extra: Record<string, number | string> = {}) => {
    rows.push({ bench: 'model', name, backend: info.name, threads: info.threads, batch: B, seq: T, ms_per_step: Math.round(ms), tokens_per_s: Math.round((B * T * 1000) / ms), ...extra });
  };

  const withModel = (opts: Phi3Options, body: (m: Phi3ForCausalLM) => void) => {
    const m = initPhi3(c, new Rng(2), opts);
    try {
      body(m);
    } finally {
      m.dispose();
    }
  };
  const step = (m: Phi3ForCausalLM, labels: number[][], opts: LossOptions = {}) => () => {
    const vars = m.trainableVariables();
    const { value, grads } = tf.variableGrads(() => m.lossFromIds(ids, labels, opts), vars);
    value.dataSync();
    tf.dispose([value, ...Object.values(grads)]);
  };

  withModel({}, (m) => {
    record('forward', time(reps, () => {
      const logits = m.forward(ids);
      logits.dataSync();
      logits.dispose();
    }));
  });
  withModel({ trainable: true }, (m) => {
    record('fwd+bwd pretrain (all weights, all targets)', time(reps, step(m, allLabels)));
  });
  withModel({ embedding: { trainable: true } }, (m) => {
    record(`fwd+bwd frozen base, ${ANSWER} targets/row, lm_head at targets`, time(reps, step(m, answerLabels)));
    record(`fwd+bwd frozen base, ${ANSWER} targets/row, lm_head at all positions`, time(reps, step(m, answerLabels, { logitsAt: 'all' })));
  });
  return rows;
}

// Run directly: node --import tsx bench/model.ts
if (import.meta.url === `file://${process.argv[1]}`) {
  for (const r of await run()) console.log(JSON.stringify(r));
}
