/**
 * Random initialisation as transformers' Phi3PreTrainedModel._init_weights does it: every linear
 * and the embedding ~ normal(0, initializer_range), the padding token's embedding row zero, norms 1.
 * All draws come from `rng.split('init')`, in model order, so a seed gives the same model.
 */
import type { Rng } from '../util/random.ts';
import { headDim, type PhiConfig } from './config.ts';
import { Phi3ForCausalLM, type Phi3Options, type WeightSource } from './phi3.ts';

/** A weight source of fresh random tensors (each name drawn once, in the order asked). */
export function randomWeights(config: PhiConfig, rng: Rng): WeightSource {
  const c = config;
  const D = c.hiddenSize;
  const hd = headDim(c);
  const shapeOf = (name: string): number[] => {
    if (name === 'model.embed_tokens.weight' || name === 'lm_head.weight') return [c.vocabSize, D];
    if (name.endsWith('layernorm.weight') || name === 'model.norm.weight') return [D];
    if (name.endsWith('qkv_proj.weight')) return [(c.numAttentionHeads + 2 * c.numKeyValueHeads) * hd, D];
    if (name.endsWith('o_proj.weight')) return [D, c.numAttentionHeads * hd];
    if (name.endsWith('gate_up_proj.weight')) return [2 * c.intermediateSize, D];
    if (name.endsWith('down_proj.weight')) return [D, c.intermediateSize];
    throw new RangeError(`randomWeights: unknown tensor ${name}`);
  };
  return (name) => {
    const shape = shapeOf(name);
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    if (shape.length === 1) return data.fill(1);
    rng.fillNormal(data, c.initializerRange);
    if (name === 'model.embed_tokens.weight' && c.padTokenId !== null && c.padTokenId < c.vocabSize) {
      data.fill(0, c.padTokenId * D, (c.padTokenId + 1) * D);
    }
    return data;
  };
}

/** A randomly initialised Phi-3 (`opts.trainable` for pretraining). Draws from rng.split('init'). */
export function initPhi3(config: PhiConfig, rng: Rng, opts: Phi3Options = {}): Phi3ForCausalLM {
  return Phi3ForCausalLM.fromWeights(config, randomWeights(config, rng.split('init')), opts);
}
