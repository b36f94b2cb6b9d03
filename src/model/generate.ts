/**
 * Decoding with the KV cache: prompts are left-padded to one length (positions come from the mask,
 * so each row sees the positions of its unpadded prompt), then one token a step for all rows. A row
 * stops at a stop id (not included in its output) or after maxNewTokens; finished rows keep stepping
 * on a masked padding token until every row is done.
 *
 * Greedy or seeded sampling, with transformers' processing order (src/model/sampling.ts). Each row
 * samples from its own random stream, so a row's tokens do not depend on the other rows of the batch.
 */
import { tf } from '../backend/tf.ts';
import { CliniloraError } from '../errors.ts';
import { Rng } from '../util/random.ts';
import { PHI3_STOP_TOKEN_IDS } from '../tokenizer/chat.ts';
import { nextToken, type SamplingOptions } from './sampling.ts';
import type { Phi3ForCausalLM } from './phi3.ts';

export interface GreedyResult {
  /** New tokens, without the stop token. */
  tokens: number[];
  finish: 'stop' | 'length';
}

export interface GenerateResult extends GreedyResult {
  /** The stop id that ended the row, when finish is 'stop'. */
  stopId?: number;
}

export interface GenerateOptions extends SamplingOptions {
  /** Most new tokens a row gets. */
  maxNewTokens: number;
  /** Argmax instead of sampling (the repetition penalty still applies, as in HF). Default: false, but temperature ≤ 0 is greedy too. */
  greedy?: boolean;
  /** Ids that end a row. Default: PHI3_STOP_TOKEN_IDS (`<|endoftext|>`, `<|assistant|>`, `<|end|>`). */
  stopIds?: readonly number[];
  /**
   * The sampling stream (by convention `root.split('sampling')`). One Rng: each row gets its own
   * stream seeded from it (row order), and the Rng advances, so two calls differ. An array: one
   * stream per row, used as is (batched equals per-row generation with the same streams).
   */
  rng?: Rng | readonly Rng[];
  /** Used when `rng` is not given: `new Rng(seed).split('sampling')`. Default 0. */
  seed?: number;
  /** Called with each new token of each row (streaming output). */
  onToken?: (row: number, token: number) => void;
}

/** Named settings. `auditorSeed`: the seed auditor project's HF `generate` call. */
export const GENERATION_PRESETS = {
  /**
   * max_new_tokens 400, temperature 0.7, top_p 0.9, repetition_penalty 1.2 (do_sample). top_k 50 is
   * transformers' GenerationConfig default, which applied there because the project did not set it.
   */
  auditorSeed: { maxNewTokens: 400, temperature: 0.7, topP: 0.9, topK: 50, repetitionPenalty: 1.2 },
  /** Deterministic argmax decoding, no penalty (what evaluation uses). */
  greedy: { maxNewTokens: 400, greedy: true, repetitionPenalty: 1 },
} as const satisfies Record<string, GenerateOptions>;

export type GenerationPresetName = keyof typeof GENERATION_PRESETS;

function rowStreams(opts: GenerateOptions, B: number): Rng[] {
  const r = opts.rng;
  if (Array.isArray(r)) {
    if (r.length !== B) throw new CliniloraError('E_ARG', 'one random stream per prompt', { field: 'rng', expected: String(B), found: String(r.length) });
    return [...r];
  }
  const root = (r as Rng | undefined) ?? new Rng(opts.seed ?? 0).split('sampling');
  return Array.from({ length: B }, () => new Rng(root.nextU32()));
}

export function generate(model: Phi3ForCausalLM, prompts: number[][], opts: GenerateOptions): GenerateResult[] {
  const B = prompts.length;
  const V = model.config.vocabSize;
  if (B === 0 || prompts.some((p) => p.length === 0)) {
    throw new CliniloraError('E_ARG', 'every prompt needs at least one token', { field: 'prompts' });
  }
  const maxNewTokens = opts.maxNewTokens;
  if (!Number.isInteger(maxNewTokens) || maxNewTokens < 0) {
    throw new CliniloraError('E_ARG', 'maxNewTokens must be a non-negative integer', { field: 'maxNewTokens', found: String(maxNewTokens) });
  }
  // Padding is masked, so any valid id works; the config's pad id may lie outside a tiny vocab.
  const p = model.config.padTokenId;
  const pad = p !== null && p < V ? p : 0;
  const L = Math.max(...prompts.map((p) => p.length));
  if (L + maxNewTokens > model.config.maxPositionEmbeddings) {
    throw new CliniloraError('E_ARG', 'prompt plus new tokens exceed the context', {
      field: 'maxNewTokens',
      expected: `≤ ${model.config.maxPositionEmbeddings - L}`,
      found: String(maxNewTokens),
    });
  }
  const greedy = opts.greedy === true || (opts.temperature !== undefined && opts.temperature <= 0);
  const streams = greedy ? null : rowStreams(opts, B);
  const ids = prompts.map((p) => [...new Array<number>(L - p.length).fill(pad), ...p]);
  const mask = prompts.map((p) => [...new Array<number>(L - p.length).fill(0), ...p.map(() => 1)]);
  const stop = new Set(opts.stopIds ?? PHI3_STOP_TOKEN_IDS);
  // Ids already in each row, for the repetition penalty (prompt + generated; padding excluded).
  const present = prompts.map((p) => [...p]);
  const results: GenerateResult[] = prompts.map(() => ({ tokens: [], finish: 'length' }));
  const done = new Array<boolean>(B).fill(false);
  if (maxNewTokens === 0) return results;
  const cache = model.createCache(B);
  try {
    let step = ids;
    let stepMask = mask;
    for (let n = 0; n < maxNewTokens; n++) {
      const logits = tf.tidy(() => model.forward(step, { attentionMask: stepMask, cache, lastOnly: true })); // [B, 1, V]
      const data = logits.dataSync() as Float32Array;
      logits.dispose();
      const tok = new Array<number>(B).fill(pad);
      for (let b = 0; b < B; b++) {
        if (done[b]) continue;
        const t = nextToken(data.subarray(b * V, (b + 1) * V), present[b]!, opts, streams?.[b] ?? null);
        tok[b] = t;
        if (stop.has(t)) {
          done[b] = true;
          results[b]!.finish = 'stop';
          results[b]!.stopId = t;
        } else {
          results[b]!.tokens.push(t);
          present[b]!.push(t);
          opts.onToken?.(b, t);
        }
      }
      if (done.every((d) => d)) break;
      step = tok.map((t, b) => [done[b] ? pad : t]);
      stepMask = done.map((d) => [d ? 0 : 1]);
    }
  } finally {
    cache.dispose();
  }
  return results;
}

/** Greedy decoding (kept for existing callers): `generate` with greedy on and no default stop ids. */
export function generateGreedy(model: Phi3ForCausalLM, prompts: number[][], maxNewTokens: number, stopIds: number[] = []): GreedyResult[] {
  return generate(model, prompts, { maxNewTokens, greedy: true, stopIds }).map(({ tokens, finish }) => ({ tokens, finish }));
}
