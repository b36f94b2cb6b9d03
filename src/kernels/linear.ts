/**
 * The one interface every linear layer of the model goes through: float, int8, NF4 and LoRA-wrapped.
 * y = x · Wᵀ (+ b) with W [out, in] as Hugging Face stores it.
 */
import type { tf } from '../backend/tf.ts';

export interface Linear {
  /** 'float' | 'int8' | 'nf4' | 'lora' — what kind of layer this is. */
  readonly kind: string;
  readonly inFeatures: number;
  readonly outFeatures: number;
  /** x [N, in] → y [N, out]. The gradient flows to x and to trainable parameters only. */
  apply(x: tf.Tensor2D): tf.Tensor2D;
  /** The (dequantized) float32 weight [out, in]; the caller disposes it. */
  weight(): tf.Tensor2D;
  /** Trainable variables of this layer (empty for a frozen base). */
  trainableVariables(): tf.Variable[];
  /** Bytes held by this layer's parameters (packed bytes for quantized layers). */
  bytes(): number;
  dispose(): void;
}
