/**
 * The shipped form of the base: a Hugging Face directory small enough for git (< 40 MB for
 * phi3-nano). The four linear kinds of every block are bitsandbytes LLM.int8 records (row-wise
 * absmax; `quantization_config` says so, as transformers expects); the token table and lm_head, half
 * of all weights and the most sensitive ones, stay F16; norms F16. Tokenizer files go beside them.
 */
import type { WrittenCheckpoint } from '../io/hf-checkpoint.ts';
import { FloatLinear } from '../kernels/float-linear.ts';
import { quantizeLinear } from '../kernels/quant-linear.ts';
import { loadPhi3, savePhi3 } from '../model/checkpoint.ts';
import { Phi3ForCausalLM } from '../model/phi3.ts';
import { writeTokenizerFiles, type Phi3Tokenizer } from '../tokenizer/index.ts';

export interface SaveBaseOptions {
  /** int8 block linears (default true); false writes every tensor F16. */
  quantize?: boolean;
  /** Writes tokenizer.json / tokenizer_config.json … beside the weights. */
  tokenizer?: Phi3Tokenizer;
}

/**
 * Writes `model` to `dir` (replacing it atomically) without changing `model`: a frozen copy is built
 * with int8 block linears (lm_head kept float), saved, and disposed.
 */
export function saveBase(dir: string, model: Phi3ForCausalLM, opts: SaveBaseOptions = {}): WrittenCheckpoint {
  const weights = new Map<string, Float32Array>();
  for (const [name, data] of model.namedWeights()) weights.set(name, new Float32Array(data));
  const quantize = opts.quantize ?? true;
  const copy = Phi3ForCausalLM.fromWeights(model.config, (name) => weights.get(name)!, {
    linearFactory: (name, w, out, inF) =>
      quantize && name !== 'lm_head' ? quantizeLinear(w, out, inF, { quant: 'int8', name }) : new FloatLinear(w, out, inF),
  });
  weights.clear();
  try {
    const written = savePhi3(dir, copy, { dtype: 'F16', quantized: quantize });
    if (opts.tokenizer !== undefined) writeTokenizerFiles(opts.tokenizer, dir);
    return written;
  } finally {
    copy.dispose();
  }
}

/** Loads a base written by saveBase (int8 layers stay int8; F16 tensors become float32). */
export function loadBase(dir: string): Phi3ForCausalLM {
  return loadPhi3(dir);
}
