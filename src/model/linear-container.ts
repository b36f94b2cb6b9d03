/**
 * What the quantization and LoRA code needs from a model: its linear layers by Hugging Face module
 * name (`model.layers.0.self_attn.qkv_proj`, `lm_head`; no `.weight`), to read and to replace.
 */
import type { Linear } from '../kernels/linear.ts';

export interface LinearContainer {
  /** All linear module names, in model order. */
  linearNames(): string[];
  /** The layer called `name`; an unknown name is an error listing the names. */
  getLinear(name: string): Linear;
  /** Replaces the layer (same in/out features). The old layer is not disposed: a wrapper may hold it. */
  setLinear(name: string, layer: Linear): void;
}

/**
 * Builds the layer for one weight. `weightOutIn` is [out, in] row-major float32 as HF stores it;
 * the factory may quantize it and drop the float copy.
 */
export type LinearFactory = (name: string, weightOutIn: Float32Array, outFeatures: number, inFeatures: number) => Linear;
