/**
 * A loaded model → a GGUF file llama.cpp runs (`phi3` architecture, with the Phi-3 tokenizer).
 *
 * Each weight is taken as the model computes with it, one tensor at a time (src/io/gguf-phi3.ts
 * writes it as it arrives, so the float32 model is never held twice):
 *   - a float layer: its weight;
 *   - an int8 / NF4 layer: its dequantized weight (the values its forward multiplies by);
 *   - a LoRA layer: base + B·A·scaling, i.e. the weight PEFT's `merge_and_unload` produces, read
 *     through `Linear.weight()` so the caller's model is not touched. For a float base this is the
 *     same float32 sum `mergeAndUnloadLora` stores; for a quantized base it is that sum before
 *     requantizing, so the GGUF type (F32/F16/Q8_0/Q4_0) is the only rounding applied.
 * Like PEFT's safe_merge, a non-finite weight is an error naming the tensor (nothing is written).
 */
import { CliniloraError } from '../errors.ts';
import { exportPhi3Gguf, loadTokenizerMetadata, type FloatTensor, type Phi3GgufFileType } from '../io/gguf-phi3.ts';
import { defaultTokenizerPath } from '../tokenizer/index.ts';
import { configToHf } from './config.ts';
import type { Phi3ForCausalLM } from './phi3.ts';

export interface ExportGgufOptions {
  /** A GGUF file whose `tokenizer.*` metadata is copied (default: the shipped Phi-3 vocabulary). */
  tokenizerGguf?: string;
  /** Tensor type of the 2-D weights (norms stay F32). Default 'F32'. */
  fileType?: Phi3GgufFileType;
  /** general.name */
  name?: string;
}

export interface ExportGgufResult {
  path: string;
  /** GGUF tensors written. */
  tensors: number;
  /** Parameters written (the embedding once, also when tied). */
  parameters: number;
}

/** The model's effective weights, HF-named, one tensor at a time, each checked finite. */
function* effectiveWeights(model: Phi3ForCausalLM): Generator<readonly [string, FloatTensor]> {
  for (const [name, data, shape] of model.namedWeights()) {
    let bad = 0;
    for (let i = 0; i < data.length; i++) if (!Number.isFinite(data[i]!)) bad++;
    if (bad > 0) {
      throw new CliniloraError('E_ARG', `weight has ${bad} non-finite value(s); refusing to export`, {
        field: name,
        hint: 'a broken adapter or a diverged training run; check the weights before exporting',
      });
    }
    yield [name, { shape, data }];
  }
}

/**
 * Writes `model` (base, quantized, or with LoRA adapters merged) to `path` as GGUF (atomic: a
 * temporary file renamed into place). The model is not modified.
 */
export async function exportGguf(model: Phi3ForCausalLM, path: string, opts: ExportGgufOptions = {}): Promise<ExportGgufResult> {
  const tokenizer = await loadTokenizerMetadata(opts.tokenizerGguf ?? defaultTokenizerPath());
  const { tensors, parameters } = await exportPhi3Gguf(path, {
    hfConfig: configToHf(model.config),
    tensors: effectiveWeights(model),
    tokenizer,
    fileType: opts.fileType ?? 'F32',
    ...(opts.name !== undefined ? { name: opts.name } : {}),
  });
  return { path, tensors, parameters };
}
