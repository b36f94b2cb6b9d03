/**
 * Export a Phi-3 model (HF `Phi3ForCausalLM` weights) to a GGUF file that llama.cpp loads with its
 * `phi3` architecture, following llama.cpp's convert_hf_to_gguf.py (Phi3MiniModel) and gguf-py's
 * tensor map:
 *
 *   model.embed_tokens.weight                       → token_embd.weight
 *   model.layers.N.input_layernorm.weight           → blk.N.attn_norm.weight      (F32)
 *   model.layers.N.self_attn.qkv_proj.weight        → blk.N.attn_qkv.weight       (q, k, v rows)
 *   model.layers.N.self_attn.o_proj.weight          → blk.N.attn_output.weight
 *   model.layers.N.post_attention_layernorm.weight  → blk.N.ffn_norm.weight       (F32)
 *   model.layers.N.mlp.gate_up_proj.weight          → blk.N.ffn_up.weight         (gate rows first: llama.cpp's swiglu splits it the same way)
 *   model.layers.N.mlp.down_proj.weight             → blk.N.ffn_down.weight
 *   model.norm.weight                               → output_norm.weight          (F32)
 *   lm_head.weight                                  → output.weight
 *
 * GGUF dims are the reverse of PyTorch shapes (HF [out, in] → ne [in, out]); the row-major bytes are
 * the same, so no transpose happens. LongRoPE (rope_scaling) is not supported.
 */
import { CliniloraError } from '../errors.ts';
import { GgufStreamWriter, openGguf, type GgmlType, type GgufTensorSpec, type GgufValue } from './gguf.ts';
import { numel, toFloat32, type RawTensor } from './tensor.ts';

export type Phi3GgufFileType = 'F32' | 'F16' | 'Q8_0' | 'Q4_0';
/** llama.cpp's LLAMA_FTYPE values for general.file_type. */
const LLAMA_FTYPE: Readonly<Record<Phi3GgufFileType, number>> = { F32: 0, F16: 1, Q4_0: 2, Q8_0: 7 };

/** Float values with a PyTorch-order shape. */
export interface FloatTensor {
  shape: number[];
  data: Float32Array;
}

export interface Phi3GgufExport {
  /** HF config.json fields (hidden_size, intermediate_size, num_hidden_layers, …); unknown keys ignored. */
  hfConfig: Record<string, unknown>;
  /** HF-named weights, in any order; each is converted and written as it arrives. */
  tensors: Iterable<readonly [string, RawTensor | FloatTensor]> | AsyncIterable<readonly [string, RawTensor | FloatTensor]>;
  /** `tokenizer.*` metadata, e.g. from `loadTokenizerMetadata('data/ggml-vocab-phi-3.gguf')`. */
  tokenizer: ReadonlyArray<readonly [string, GgufValue]> | Readonly<Record<string, GgufValue>>;
  fileType: Phi3GgufFileType;
  /** general.name */
  name?: string;
}

/** The `tokenizer.*` metadata entries of a GGUF file (a llama.cpp vocab file or any Phi-3 GGUF). */
export async function loadTokenizerMetadata(ggufPath: string): Promise<Array<[string, GgufValue]>> {
  const f = await openGguf(ggufPath);
  f.close();
  const out = Object.entries(f.metadata).filter(([k]) => k.startsWith('tokenizer.'));
  if (out.length === 0) throw new CliniloraError('E_TOKENIZER', 'no tokenizer.* metadata in the GGUF file', { file: ggufPath });
  return out;
}

interface Phi3Dims {
  hidden: number;
  ff: number;
  layers: number;
  heads: number;
  kvHeads: number;
  vocab: number;
  headDim: number;
  maxPos: number;
  origMaxPos: number;
  eps: number;
  ropeTheta: number;
  slidingWindow: number;
  tied: boolean;
}

function readDims(c: Record<string, unknown>): Phi3Dims {
  const problems: string[] = [];
  const int = (key: string, dflt?: number): number => {
    const v = c[key] ?? dflt;
    if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) {
      problems.push(`${key}: expected a positive integer, found ${JSON.stringify(c[key])}`);
      return 1;
    }
    return v;
  };
  const num = (key: string, dflt?: number): number => {
    const v = c[key] ?? dflt;
    if (typeof v !== 'number' || !(v > 0)) {
      problems.push(`${key}: expected a positive number, found ${JSON.stringify(c[key])}`);
      return 1;
    }
    return v;
  };
  const hidden = int('hidden_size');
  const heads = int('num_attention_heads');
  const maxPos = int('max_position_embeddings');
  const dims: Phi3Dims = {
    hidden,
    ff: int('intermediate_size'),
    layers: int('num_hidden_layers'),
    heads,
    kvHeads: int('num_key_value_heads', heads),
    vocab: int('vocab_size'),
    headDim: hidden / heads,
    maxPos,
    origMaxPos: int('original_max_position_embeddings', maxPos),
    eps: num('rms_norm_eps'),
    ropeTheta: num('rope_theta', 10000),
    slidingWindow: c['sliding_window'] == null ? 0 : int('sliding_window'),
    tied: c['tie_word_embeddings'] === true,
  };
  if (!Number.isInteger(dims.headDim)) problems.push(`hidden_size ${hidden} is not a multiple of num_attention_heads ${heads}`);
  if (c['rope_scaling'] != null) problems.push('rope_scaling: LongRoPE/scaled RoPE export is not supported (expected null)');
  if (c['partial_rotary_factor'] != null && c['partial_rotary_factor'] !== 1) problems.push('partial_rotary_factor: only 1.0 is supported');
  if (problems.length > 0) throw new CliniloraError('E_CONFIG', `cannot export this Phi-3 config:\n  ${problems.join('\n  ')}`, { field: 'hfConfig' });
  return dims;
}

/** Every GGUF tensor of the model, with its HF name and GGUF dims. */
function tensorPlan(d: Phi3Dims): Array<{ hf: string; gguf: string; dims: number[] }> {
  const qkvOut = (d.heads + 2 * d.kvHeads) * d.headDim;
  const plan = [{ hf: 'model.embed_tokens.weight', gguf: 'token_embd.weight', dims: [d.hidden, d.vocab] }];
  for (let i = 0; i < d.layers; i++) {
    const p = `model.layers.${i}.`;
    plan.push(
      { hf: `${p}input_layernorm.weight`, gguf: `blk.${i}.attn_norm.weight`, dims: [d.hidden] },
      { hf: `${p}self_attn.qkv_proj.weight`, gguf: `blk.${i}.attn_qkv.weight`, dims: [d.hidden, qkvOut] },
      { hf: `${p}self_attn.o_proj.weight`, gguf: `blk.${i}.attn_output.weight`, dims: [d.heads * d.headDim, d.hidden] },
      { hf: `${p}post_attention_layernorm.weight`, gguf: `blk.${i}.ffn_norm.weight`, dims: [d.hidden] },
      { hf: `${p}mlp.gate_up_proj.weight`, gguf: `blk.${i}.ffn_up.weight`, dims: [d.hidden, 2 * d.ff] },
      { hf: `${p}mlp.down_proj.weight`, gguf: `blk.${i}.ffn_down.weight`, dims: [d.ff, d.hidden] },
    );
  }
  plan.push({ hf: 'model.norm.weight', gguf: 'output_norm.weight', dims: [d.hidden] });
  plan.push({ hf: 'lm_head.weight', gguf: 'output.weight', dims: [d.hidden, d.vocab] });
  return plan;
}

/** The ggml type of one tensor: norms (1-D) stay F32; quantized types need dims[0] % 32 == 0, else F16 (as convert_hf_to_gguf falls back). */
function typeFor(fileType: Phi3GgufFileType, dims: number[]): GgmlType {
  if (dims.length === 1 || fileType === 'F32') return 'F32';
  if (fileType === 'F16') return 'F16';
  return dims[0]! % 32 === 0 ? fileType : 'F16';
}

function isFloatTensor(t: RawTensor | FloatTensor): t is FloatTensor {
  return t.data instanceof Float32Array && !('dtype' in t);
}

/** Writes the GGUF file (atomic). Returns the number of GGUF tensors and of parameters given. */
export async function exportPhi3Gguf(path: string, input: Phi3GgufExport): Promise<{ tensors: number; parameters: number }> {
  const d = readDims(input.hfConfig);
  const tok: Array<readonly [string, GgufValue]> = (Array.isArray(input.tokenizer) ? input.tokenizer : Object.entries(input.tokenizer)).filter(([k]: readonly [string, GgufValue]) =>
    k.startsWith('tokenizer.'),
  );
  const tokens = tok.find(([k]) => k === 'tokenizer.ggml.tokens')?.[1];
  if (tokens === undefined || tokens.type !== 'array') {
    throw new CliniloraError('E_TOKENIZER', 'tokenizer metadata has no tokenizer.ggml.tokens array', { field: 'tokenizer', hint: "copy it from a vocab GGUF with loadTokenizerMetadata('data/ggml-vocab-phi-3.gguf')" });
  }
  if (tokens.value.length !== d.vocab) {
    throw new CliniloraError('E_TOKENIZER', 'tokenizer size does not match vocab_size', { field: 'tokenizer.ggml.tokens', expected: `${d.vocab} tokens`, found: `${tokens.value.length}` });
  }
  const u32 = (value: number): GgufValue => ({ type: 'u32', value });
  const f32 = (value: number): GgufValue => ({ type: 'f32', value });
  const metadata: Array<readonly [string, GgufValue]> = [
    ['general.architecture', { type: 'string', value: 'phi3' }],
    ...(input.name !== undefined ? [['general.name', { type: 'string', value: input.name }] as const] : []),
    ['phi3.context_length', u32(d.maxPos)],
    ['phi3.rope.scaling.original_context_length', u32(d.origMaxPos)],
    ['phi3.embedding_length', u32(d.hidden)],
    ['phi3.feed_forward_length', u32(d.ff)],
    ['phi3.block_count', u32(d.layers)],
    ['phi3.attention.head_count', u32(d.heads)],
    ['phi3.attention.head_count_kv', u32(d.kvHeads)],
    ['phi3.attention.layer_norm_rms_epsilon', f32(d.eps)],
    ['phi3.rope.dimension_count', u32(d.headDim)],
    ['phi3.rope.freq_base', f32(d.ropeTheta)],
    ['general.file_type', u32(LLAMA_FTYPE[input.fileType])],
    ['phi3.attention.sliding_window', u32(d.slidingWindow)],
    ['general.quantization_version', u32(2)],
    ...tok,
  ];
  const plan = tensorPlan(d);
  const byHf = new Map(plan.map((p) => [p.hf, p]));
  const specs: GgufTensorSpec[] = plan.map((p) => ({ name: p.gguf, dims: p.dims, type: typeFor(input.fileType, p.dims) }));
  const writer = new GgufStreamWriter(path, metadata, specs);
  let parameters = 0;
  try {
    for await (const [hfName, t] of input.tensors) {
      if (hfName.endsWith('.rotary_emb.inv_freq')) continue; // a buffer some checkpoints carry, recomputed by llama.cpp
      const p = byHf.get(hfName);
      if (p === undefined) {
        throw new CliniloraError('E_FORMAT', 'tensor is not part of a Phi-3 model', { field: hfName, hint: 'expected HF Phi3ForCausalLM names such as model.layers.0.self_attn.qkv_proj.weight' });
      }
      const want = [...p.dims].reverse();
      if (t.shape.length !== want.length || t.shape.some((s, i) => s !== want[i])) {
        throw new CliniloraError('E_SHAPE', 'tensor shape does not match the config', { field: hfName, expected: `[${want.join(', ')}]`, found: `[${t.shape.join(', ')}]` });
      }
      const values = isFloatTensor(t) ? t.data : toFloat32(t);
      if (values.length !== numel(want)) {
        throw new CliniloraError('E_SHAPE', 'value count does not match the shape', { field: hfName, expected: `${numel(want)}`, found: `${values.length}` });
      }
      // Tied embeddings: llama.cpp's phi3 graph needs output.weight, so the embedding is written twice.
      const outputDone = !writer.missing().includes('output.weight');
      if (d.tied && p.gguf === 'output.weight' && outputDone) continue;
      writer.put(p.gguf, values);
      if (d.tied && p.gguf === 'token_embd.weight' && !outputDone) writer.put('output.weight', values);
      parameters += values.length;
    }
    const missing = writer.missing();
    if (missing.length > 0) {
      const hfMissing = plan.filter((p) => missing.includes(p.gguf)).map((p) => p.hf);
      throw new CliniloraError('E_MISSING', `${hfMissing.length} Phi-3 tensor(s) were not given: ${hfMissing.slice(0, 5).join(', ')}${hfMissing.length > 5 ? ', …' : ''}`, { file: path });
    }
  } catch (e) {
    writer.abort();
    throw e;
  }
  writer.finish();
  return { tensors: plan.length, parameters };
}
