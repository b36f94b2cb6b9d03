/**
 * Greedy decoding with the KV cache: prompts are left-padded to one length (positions come from the
 * mask, so each row sees the positions of its unpadded prompt), then one token a step for all rows.
 * A row stops at a stop id (not included in its output) or after maxNewTokens.
 */
import { tf } from '../backend/tf.ts';
import { CliniloraError } from '../errors.ts';
import type { Phi3ForCausalLM } from './phi3.ts';

export interface GreedyResult {
  /** New tokens, without the stop token. */
  tokens: number[];
  finish: 'stop' | 'length';
}

export function generateGreedy(model: Phi3ForCausalLM, prompts: number[][], maxNewTokens: number, stopIds: number[] = []): GreedyResult[] {
  const B = prompts.length;
  if (B === 0 || prompts.some((p) => p.length === 0)) {
    throw new CliniloraError('E_ARG', 'every prompt needs at least one token', { field: 'prompts' });
  }
  // Padding is masked, so any valid id works; the config's pad id may lie outside a tiny vocab.
  const p = model.config.padTokenId;
  const pad = p !== null && p < model.config.vocabSize ? p : 0;
  const L = Math.max(...prompts.map((p) => p.length));
  if (L + maxNewTokens > model.config.maxPositionEmbeddings) {
    throw new CliniloraError('E_ARG', 'prompt plus new tokens exceed the context', {
      field: 'maxNewTokens',
      expected: `≤ ${model.config.maxPositionEmbeddings - L}`,
      found: String(maxNewTokens),
    });
  }
  const ids = prompts.map((p) => [...new Array<number>(L - p.length).fill(pad), ...p]);
  const mask = prompts.map((p) => [...new Array<number>(L - p.length).fill(0), ...p.map(() => 1)]);
  const stop = new Set(stopIds);
  const results: GreedyResult[] = prompts.map(() => ({ tokens: [], finish: 'length' }));
  const done = new Array<boolean>(B).fill(false);
  const cache = model.createCache(B);
  try {
    let step = ids;
    let stepMask = mask;
    for (let n = 0; n < maxNewTokens; n++) {
      const next = tf.tidy(() => {
        const logits = model.forward(step, { attentionMask: stepMask, cache, lastOnly: true }); // [B, 1, V]
        return tf.argMax(tf.reshape(logits, [B, model.config.vocabSize]), -1);
      });
      const tok = Array.from(next.dataSync());
      next.dispose();
      for (let b = 0; b < B; b++) {
        if (done[b]) continue;
        if (stop.has(tok[b]!)) {
          done[b] = true;
          results[b]!.finish = 'stop';
        } else results[b]!.tokens.push(tok[b]!);
      }
      if (done.every((d) => d)) break;
      // Finished rows keep stepping on a masked padding token.
      step = tok.map((t, b) => [done[b] ? pad : t]);
      stepMask = done.map((d) => [d ? 0 : 1]);
    }
  } finally {
    cache.dispose();
  }
  return results;
}
