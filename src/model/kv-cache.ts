/**
 * Key/value cache for incremental decoding: per layer k, v [B, KV, S, hd] (after RoPE), plus what
 * the masks need: which of the S cached keys are real tokens per row, and each row's next position.
 * The tensors are kept (tf.keep) so a caller's tidy does not free them; `dispose()` does.
 */
import { tf } from '../backend/tf.ts';

export class KVCache {
  readonly batch: number;
  /** Cached keys/values per layer, undefined before the first forward. [B, KV, S, hd] */
  readonly layers: Array<{ k?: tf.Tensor4D; v?: tf.Tensor4D }>;
  /** Per row, 1/0 for each cached key (real token / padding). */
  keyMask: Uint8Array[];
  /** Per row, the RoPE position of the next real token. */
  nextPos: Int32Array;

  constructor(batch: number, numLayers: number) {
    this.batch = batch;
    this.layers = Array.from({ length: numLayers }, () => ({}));
    this.keyMask = Array.from({ length: batch }, () => new Uint8Array(0));
    this.nextPos = new Int32Array(batch);
  }

  /** Number of cached positions S. */
  get length(): number {
    return this.keyMask[0]!.length;
  }

  /** Appends k, v [B, KV, T, hd] for layer i; returns the full [B, KV, S + T, hd]. */
  append(i: number, k: tf.Tensor4D, v: tf.Tensor4D): { k: tf.Tensor4D; v: tf.Tensor4D } {
    const layer = this.layers[i]!;
    const nk = tf.keep(layer.k === undefined ? tf.clone(k) : tf.concat([layer.k, k], 2));
    const nv = tf.keep(layer.v === undefined ? tf.clone(v) : tf.concat([layer.v, v], 2));
    layer.k?.dispose();
    layer.v?.dispose();
    layer.k = nk;
    layer.v = nv;
    return { k: nk, v: nv };
  }

  /** Records the new tokens' mask [B·T] and next positions, once all layers appended. */
  advance(mask: Int32Array, T: number, next: Int32Array): void {
    this.keyMask = this.keyMask.map((old, b) => {
      const m = new Uint8Array(old.length + T);
      m.set(old);
      for (let t = 0; t < T; t++) m[old.length + t] = mask[b * T + t] !== 0 ? 1 : 0;
      return m;
    });
    this.nextPos = next;
  }

  bytes(): number {
    let n = 0;
    for (const l of this.layers) n += (l.k?.size ?? 0) + (l.v?.size ?? 0);
    return n * 4;
  }

  dispose(): void {
    for (const l of this.layers) {
      l.k?.dispose();
      l.v?.dispose();
      l.k = undefined;
      l.v = undefined;
    }
  }
}
