/**
 * One factory the model loader calls layer by layer: a float32 [out, in] weight in, a frozen `Linear`
 * of the requested kind out. The caller may drop its float array afterwards; quantized layers keep only
 * packed typed arrays.
 */
import { CliniloraError } from '../errors.ts';
import type { Linear } from './linear.ts';
import { FloatLinear } from './float-linear.ts';
import { Int8Linear, DEFAULT_INT8_THRESHOLD } from './int8-linear.ts';
import { NF4Linear } from './nf4-linear.ts';

export type QuantKind = 'none' | 'int8' | 'nf4';
export const QUANT_KINDS: readonly QuantKind[] = ['none', 'int8', 'nf4'];

export interface QuantizeLinearOptions {
  /** 'none' = float32, 'int8' = LLM.int8 row-wise, 'nf4' = QLoRA 4-bit NormalFloat. */
  quant: QuantKind;
  /** NF4 only: quantize the absmax statistics too (bnb_4bit_use_double_quant). Default false. */
  doubleQuant?: boolean;
  /** int8 only: outlier threshold on |x| (llm_int8_threshold); 0 = weight-only. Default 6.0. */
  threshold?: number;
  /** 'none' only: make the weight a trainable variable (pretraining a base). Default false. */
  trainable?: boolean;
  /** Module name, for error messages. */
  name?: string;
}

export function quantizeLinear(weightOutIn: Float32Array, outFeatures: number, inFeatures: number, opts: QuantizeLinearOptions): Linear {
  if (weightOutIn.length !== outFeatures * inFeatures) {
    throw new CliniloraError('E_SHAPE', 'quantizeLinear: weight length does not match [out, in]', {
      field: opts.name ?? 'weight',
      expected: `${outFeatures}×${inFeatures} = ${outFeatures * inFeatures} values`,
      found: String(weightOutIn.length),
    });
  }
  switch (opts.quant) {
    case 'none':
      // No variable name: tfjs names are process-global, and a second model would collide.
      return new FloatLinear(weightOutIn, outFeatures, inFeatures, { trainable: opts.trainable ?? false });
    case 'int8':
      return Int8Linear.fromFloat(weightOutIn, outFeatures, inFeatures, { threshold: opts.threshold ?? DEFAULT_INT8_THRESHOLD });
    case 'nf4':
      return NF4Linear.fromFloat(weightOutIn, outFeatures, inFeatures, { doubleQuant: opts.doubleQuant ?? false });
    default:
      throw new CliniloraError('E_ARG', 'unknown quantization kind', {
        field: 'quant',
        expected: QUANT_KINDS.join(' | '),
        found: String((opts as { quant: unknown }).quant),
      });
  }
}
