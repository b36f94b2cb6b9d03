/**
 * Logit processing and sampling for one row of next-token logits [V], in plain JS on the host (the
 * model hands back [B, 1, V] once a step; V = 32064 floats a row is cheap to process here).
 *
 * The order is transformers' `generate`: repetition penalty (a logits processor, applied in greedy
 * mode too), then the sampling warpers temperature → top-k → top-p, then softmax and a draw.
 * Filtered tokens get -Infinity, as HF's `filter_value`.
 */
import { CliniloraError } from '../errors.ts';
import type { Rng } from '../util/random.ts';

export interface SamplingOptions {
  /** Softmax temperature; ≤ 0 means greedy (transformers requires > 0 when sampling). Default 1. */
  temperature?: number;
  /** Keep the k most likely tokens (ties at the k-th value kept, as HF). 0 or undefined: off. */
  topK?: number;
  /** Keep the smallest set of most likely tokens whose mass is ≥ p. 1 or undefined: off. */
  topP?: number;
  /** HF's repetition penalty θ: logits of tokens already present are divided by θ when positive and multiplied by θ when negative. 1: off. */
  repetitionPenalty?: number;
}

/**
 * HF `RepetitionPenaltyLogitsProcessor`, in place: for each distinct token already present,
 * logit > 0 → logit / θ, else logit · θ (so θ > 1 always makes it less likely).
 */
export function applyRepetitionPenalty(logits: Float32Array, present: Iterable<number>, penalty: number): Float32Array {
  if (penalty === 1) return logits;
  if (!(penalty > 0)) throw new CliniloraError('E_ARG', 'repetition penalty must be > 0', { field: 'repetitionPenalty', expected: '> 0', found: String(penalty) });
  const seen = new Set<number>();
  for (const id of present) {
    if (seen.has(id) || id < 0 || id >= logits.length) continue;
    seen.add(id);
    const x = logits[id]!;
    logits[id] = x > 0 ? x / penalty : x * penalty;
  }
  return logits;
}

/** Divides by the temperature, in place. */
export function applyTemperature(logits: Float32Array, temperature: number): Float32Array {
  if (temperature === 1) return logits;
  if (!(temperature > 0)) throw new CliniloraError('E_ARG', 'temperature must be > 0 when sampling', { field: 'temperature', expected: '> 0', found: String(temperature) });
  for (let i = 0; i < logits.length; i++) logits[i] = logits[i]! / temperature;
  return logits;
}

/** HF `TopKLogitsWarper`, in place: everything strictly below the k-th largest logit → -Infinity. */
export function applyTopK(logits: Float32Array, k: number): Float32Array {
  if (k <= 0 || k >= logits.length) return logits;
  const kth = Float32Array.from(logits).sort().reverse()[Math.floor(k) - 1]!;
  for (let i = 0; i < logits.length; i++) if (logits[i]! < kth) logits[i] = -Infinity;
  return logits;
}

/**
 * HF `TopPLogitsWarper`, in place: with probabilities sorted ascending, a token is removed when the
 * cumulative mass up to and including it is ≤ 1 − p. What stays is the smallest set of the most likely
 * tokens with mass ≥ p; the most likely token always stays.
 */
export function applyTopP(logits: Float32Array, p: number): Float32Array {
  if (p >= 1) return logits;
  if (!(p > 0)) throw new CliniloraError('E_ARG', 'top-p must be in (0, 1]', { field: 'topP', expected: '(0, 1]', found: String(p) });
  const probs = softmax(logits);
  const order = Array.from(probs.keys()).filter((i) => probs[i]! > 0).sort((a, b) => probs[a]! - probs[b]! || b - a);
  let cum = 0;
  for (let j = 0; j < order.length - 1; j++) {
    cum += probs[order[j]!]!;
    if (cum > 1 - p) break;
    logits[order[j]!] = -Infinity;
  }
  return logits;
}

/** Softmax in float64 arithmetic, returned as Float64Array; -Infinity logits get probability 0. */
export function softmax(logits: Float32Array): Float64Array {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i]! > max) max = logits[i]!;
  const out = new Float64Array(logits.length);
  let sum = 0;
  for (let i = 0; i < logits.length; i++) {
    const e = logits[i] === -Infinity ? 0 : Math.exp(logits[i]! - max);
    out[i] = e;
    sum += e;
  }
  for (let i = 0; i < out.length; i++) out[i] = out[i]! / sum;
  return out;
}

/** Index of the largest value (the first on ties, as argmax does). */
export function argmax(values: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i]! > values[best]!) best = i;
  return best;
}

/** One draw from a probability vector with one uniform number from `rng` (inverse CDF). */
export function sampleFrom(probs: Float64Array, rng: Rng): number {
  const u = rng.uniform();
  let cum = 0;
  let last = 0;
  for (let i = 0; i < probs.length; i++) {
    if (probs[i]! <= 0) continue;
    cum += probs[i]!;
    last = i;
    if (u < cum) return i;
  }
  return last; // u fell into the rounding gap above the total
}

/**
 * The processed logits of one row (a copy): repetition penalty, then — when sampling — temperature,
 * top-k and top-p. `present` are the ids already in the row (prompt and generated).
 */
export function processLogits(logits: Float32Array, present: Iterable<number>, opts: SamplingOptions, sampling: boolean): Float32Array {
  const x = applyRepetitionPenalty(Float32Array.from(logits), present, opts.repetitionPenalty ?? 1);
  if (!sampling) return x;
  applyTemperature(x, opts.temperature ?? 1);
  if (opts.topK !== undefined) applyTopK(x, opts.topK);
  if (opts.topP !== undefined) applyTopP(x, opts.topP);
  return x;
}

/** The next token of one row: argmax of the processed logits when greedy, else a seeded draw. */
export function nextToken(logits: Float32Array, present: Iterable<number>, opts: SamplingOptions, rng: Rng | null): number {
  const sampling = rng !== null;
  const x = processLogits(logits, present, opts, sampling);
  return sampling ? sampleFrom(softmax(x), rng) : argmax(x);
}
