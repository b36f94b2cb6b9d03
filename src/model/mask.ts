/**
 * Positions and the attention bias for one forward, from the 1/0 attention mask.
 *
 * Positions count real tokens only (HF: cumsum(mask) − 1), continuing from the cache, so a
 * left-padded row gets the same RoPE positions as the unpadded sequence; a padding token gets 1
 * (its value does not matter: it is masked as a key, and its own output is never used).
 *
 * The bias [B, 1, T, S] lets query i (absolute index q = past + i) attend key j iff
 *   j ≤ q (causal)  ∧  keyMask[j] = 1 (not padding)  ∧  q − j < slidingWindow (when set),
 * the same rule as transformers' sliding-window causal mask.
 */
import { MASKED } from '../kernels/attention.ts';

/** positions [B·T] for mask [B·T], starting each row at start[b]; returns the next start per row. */
export function positionsFromMask(mask: Int32Array, B: number, T: number, start?: Int32Array): { positions: Int32Array; next: Int32Array } {
  const positions = new Int32Array(B * T);
  const next = new Int32Array(B);
  for (let b = 0; b < B; b++) {
    let p = start?.[b] ?? 0;
    for (let t = 0; t < T; t++) {
      const i = b * T + t;
      if (mask[i] !== 0) positions[i] = p++;
      else positions[i] = 1;
    }
    next[b] = p;
  }
  return { positions, next };
}

/**
 * keyMask: per row, 1/0 for all S = past + T keys. Returns the additive bias [B, 1, T, S]
 * (0 = attend, MASKED = not).
 */
export function attentionBias(keyMask: Uint8Array[], T: number, past: number, slidingWindow: number | null): Float32Array {
  const B = keyMask.length;
  const S = past + T;
  const bias = new Float32Array(B * T * S);
  for (let b = 0; b < B; b++) {
    const km = keyMask[b]!;
    for (let i = 0; i < T; i++) {
      const q = past + i;
      const o = (b * T + i) * S;
      for (let j = 0; j < S; j++) {
        const ok = j <= q && km[j] !== 0 && (slidingWindow === null || q - j < slidingWindow);
        if (!ok) bias[o + j] = MASKED;
      }
    }
  }
  return bias;
}
