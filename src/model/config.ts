/**
 * Phi-3 configuration: the fields `Phi3ForCausalLM` reads from a Hugging Face `config.json`, in
 * camelCase, with conversion both ways and two presets.
 *
 * `configFromHf` ignores keys it does not know (as mlx-lm's `BaseModelArgs.from_dict`), rejects a
 * known key of the wrong type, and rejects what this implementation cannot run (rope scaling,
 * partial rotary, attention bias, another activation) with an error that names the file and field.
 */
import { CliniloraError } from '../errors.ts';

export interface PhiConfig {
  /** Always 'phi3'. */
  modelType: 'phi3';
  architectures: string[];
  vocabSize: number;
  hiddenSize: number;
  /** Width of the MLP; gate_up_proj has 2× this many rows. */
  intermediateSize: number;
  numHiddenLayers: number;
  numAttentionHeads: number;
  /** < numAttentionHeads for grouped-query attention. */
  numKeyValueHeads: number;
  /** Only 'silu' (SwiGLU MLP). */
  hiddenAct: 'silu';
  maxPositionEmbeddings: number;
  originalMaxPositionEmbeddings: number;
  rmsNormEps: number;
  ropeTheta: number;
  /** Only null (plain RoPE) is supported. */
  ropeScaling: null;
  /** Only 1.0 (rotary over the whole head) is supported. */
  partialRotaryFactor: number;
  /** Keys at distance ≥ slidingWindow are masked; null: no window. */
  slidingWindow: number | null;
  tieWordEmbeddings: boolean;
  bosTokenId: number | null;
  eosTokenId: number | number[] | null;
  padTokenId: number | null;
  /** Only false. */
  attentionBias: false;
  residPdrop: number;
  embdPdrop: number;
  attentionDropout: number;
  initializerRange: number;
  useCache: boolean;
  torchDtype: string;
}

/** head_dim = hidden / heads. */
export function headDim(c: PhiConfig): number {
  return c.hiddenSize / c.numAttentionHeads;
}

const MINI_4K: PhiConfig = {
  modelType: 'phi3',
  architectures: ['Phi3ForCausalLM'],
  vocabSize: 32064,
  hiddenSize: 3072,
  intermediateSize: 8192,
  numHiddenLayers: 32,
  numAttentionHeads: 32,
  numKeyValueHeads: 32,
  hiddenAct: 'silu',
  maxPositionEmbeddings: 4096,
  originalMaxPositionEmbeddings: 4096,
  rmsNormEps: 1e-5,
  ropeTheta: 10000.0,
  ropeScaling: null,
  partialRotaryFactor: 1.0,
  slidingWindow: 2047,
  tieWordEmbeddings: false,
  bosTokenId: 1,
  eosTokenId: 32000,
  padTokenId: 32000,
  attentionBias: false,
  residPdrop: 0.0,
  embdPdrop: 0.0,
  attentionDropout: 0.0,
  initializerRange: 0.02,
  useCache: true,
  torchDtype: 'bfloat16',
};

/** The small base we pretrain ourselves: Phi-3's vocabulary and shape rules, 256 wide, 4 layers. */
const NANO: PhiConfig = {
  ...MINI_4K,
  hiddenSize: 256,
  intermediateSize: 768,
  numHiddenLayers: 4,
  numAttentionHeads: 8,
  numKeyValueHeads: 8,
  maxPositionEmbeddings: 1024,
  originalMaxPositionEmbeddings: 1024,
  // Equal to the context: the window never masks anything (attend when i - j < window).
  slidingWindow: 1024,
  torchDtype: 'float32',
};

const PRESETS: Record<string, PhiConfig> = {
  'phi3-mini-4k-instruct': MINI_4K,
  'phi3-nano': NANO,
};

export function presetNames(): string[] {
  return Object.keys(PRESETS);
}

/** A copy of a preset config; unknown names are an error listing the presets. */
export function getPreset(name: string): PhiConfig {
  const p = PRESETS[name];
  if (p === undefined) {
    throw new CliniloraError('E_CONFIG', `unknown model preset`, {
      field: 'preset',
      expected: `one of ${presetNames().join(', ')}`,
      found: JSON.stringify(name),
    });
  }
  return cloneConfig(p);
}

function cloneConfig(c: PhiConfig): PhiConfig {
  return {
    ...c,
    architectures: [...c.architectures],
    eosTokenId: Array.isArray(c.eosTokenId) ? [...c.eosTokenId] : c.eosTokenId,
  };
}

// ---- HF config.json ⇄ PhiConfig -------------------------------------------------------------

type Kind = 'int' | 'posint' | 'number' | 'bool' | 'string' | 'string[]' | 'int|int[]';

/** One entry per known snake_case key: its camelCase field, type, whether null is allowed. */
interface FieldSpec {
  key: keyof PhiConfig;
  kind: Kind;
  nullable?: boolean;
}

const FIELDS: Record<string, FieldSpec> = {
  vocab_size: { key: 'vocabSize', kind: 'posint' },
  hidden_size: { key: 'hiddenSize', kind: 'posint' },
  intermediate_size: { key: 'intermediateSize', kind: 'posint' },
  num_hidden_layers: { key: 'numHiddenLayers', kind: 'posint' },
  num_attention_heads: { key: 'numAttentionHeads', kind: 'posint' },
  num_key_value_heads: { key: 'numKeyValueHeads', kind: 'posint', nullable: true },
  hidden_act: { key: 'hiddenAct', kind: 'string' },
  max_position_embeddings: { key: 'maxPositionEmbeddings', kind: 'posint' },
  original_max_position_embeddings: { key: 'originalMaxPositionEmbeddings', kind: 'posint' },
  rms_norm_eps: { key: 'rmsNormEps', kind: 'number' },
  rope_theta: { key: 'ropeTheta', kind: 'number' },
  partial_rotary_factor: { key: 'partialRotaryFactor', kind: 'number' },
  sliding_window: { key: 'slidingWindow', kind: 'posint', nullable: true },
  tie_word_embeddings: { key: 'tieWordEmbeddings', kind: 'bool' },
  bos_token_id: { key: 'bosTokenId', kind: 'int', nullable: true },
  eos_token_id: { key: 'eosTokenId', kind: 'int|int[]', nullable: true },
  pad_token_id: { key: 'padTokenId', kind: 'int', nullable: true },
  attention_bias: { key: 'attentionBias', kind: 'bool' },
  resid_pdrop: { key: 'residPdrop', kind: 'number' },
  embd_pdrop: { key: 'embdPdrop', kind: 'number' },
  attention_dropout: { key: 'attentionDropout', kind: 'number' },
  initializer_range: { key: 'initializerRange', kind: 'number' },
  use_cache: { key: 'useCache', kind: 'bool' },
  torch_dtype: { key: 'torchDtype', kind: 'string' },
  architectures: { key: 'architectures', kind: 'string[]', nullable: true },
};

/** Keys without which a config.json cannot describe a model. */
const REQUIRED = ['vocab_size', 'hidden_size', 'intermediate_size', 'num_hidden_layers', 'num_attention_heads'];

function isKind(v: unknown, kind: Kind): boolean {
  switch (kind) {
    case 'int':
      return typeof v === 'number' && Number.isInteger(v);
    case 'posint':
      return typeof v === 'number' && Number.isInteger(v) && v > 0;
    case 'number':
      return typeof v === 'number' && Number.isFinite(v);
    case 'bool':
      return typeof v === 'boolean';
    case 'string':
      return typeof v === 'string';
    case 'string[]':
      return Array.isArray(v) && v.every((s) => typeof s === 'string');
    case 'int|int[]':
      return isKind(v, 'int') || (Array.isArray(v) && v.length > 0 && v.every((s) => isKind(s, 'int')));
  }
}

const KIND_TEXT: Record<Kind, string> = {
  int: 'an integer',
  posint: 'a positive integer',
  number: 'a finite number',
  bool: 'true or false',
  string: 'a string',
  'string[]': 'an array of strings',
  'int|int[]': 'an integer or an array of integers',
};

function describe(v: unknown): string {
  if (v === undefined) return 'nothing';
  const s = JSON.stringify(v);
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

/**
 * Reads a parsed Hugging Face `config.json` object. `file` is only used in error messages.
 * Defaults for absent keys are those of transformers' `Phi3Config`.
 */
export function configFromHf(json: unknown, opts: { file?: string } = {}): PhiConfig {
  const file = opts.file ?? 'config.json';
  const fail = (field: string, message: string, expected: string, found: unknown, hint?: string): never => {
    throw new CliniloraError('E_CONFIG', message, { file, field, expected, found: describe(found), hint });
  };
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new CliniloraError('E_CONFIG', 'a model config must be a JSON object', {
      file,
      expected: 'an object',
      found: describe(json),
    });
  }
  const j = json as Record<string, unknown>;
  if (j.model_type !== 'phi3') {
    fail('model_type', 'unsupported model type', '"phi3"', j.model_type, 'only Phi-3 (Phi3ForCausalLM) checkpoints are supported');
  }
  for (const key of REQUIRED) {
    if (!(key in j)) fail(key, 'required field is missing', KIND_TEXT[FIELDS[key]!.kind], undefined);
  }
  // transformers' Phi3Config defaults, not the mini's (e.g. sliding_window, torch_dtype).
  const c: PhiConfig = {
    ...cloneConfig(MINI_4K),
    slidingWindow: null,
    torchDtype: 'float32',
    maxPositionEmbeddings: 4096,
  };
  const out = c as unknown as Record<string, unknown>;
  for (const [key, spec] of Object.entries(FIELDS)) {
    if (!(key in j)) continue;
    const v = j[key];
    if (v === null && spec.nullable === true) {
      if (key === 'num_key_value_heads') continue; // null means "same as heads", resolved below
      out[spec.key] = key === 'architectures' ? ['Phi3ForCausalLM'] : null;
      continue;
    }
    if (!isKind(v, spec.kind)) fail(key, 'wrong type', KIND_TEXT[spec.kind] + (spec.nullable ? ' or null' : ''), v);
    out[spec.key] = Array.isArray(v) ? [...(v as unknown[])] : v;
  }
  if (!('num_key_value_heads' in j) || j.num_key_value_heads === null) c.numKeyValueHeads = c.numAttentionHeads;
  if (!('original_max_position_embeddings' in j)) c.originalMaxPositionEmbeddings = c.maxPositionEmbeddings;

  // What this implementation can run.
  if ('rope_scaling' in j && j.rope_scaling !== null) {
    fail('rope_scaling', 'unsupported RoPE scaling', 'null', j.rope_scaling,
      'long-context Phi-3 variants (longrope/su scaling) are not supported; use a 4k model');
  }
  if (c.hiddenAct !== 'silu') fail('hidden_act', 'unsupported activation', '"silu"', j.hidden_act);
  if (c.partialRotaryFactor !== 1.0) fail('partial_rotary_factor', 'unsupported partial rotary', '1.0', j.partial_rotary_factor);
  if (c.attentionBias !== false) fail('attention_bias', 'unsupported attention bias', 'false', j.attention_bias);
  if (c.hiddenSize % c.numAttentionHeads !== 0) {
    fail('hidden_size', 'hidden_size must be divisible by num_attention_heads',
      `a multiple of ${c.numAttentionHeads}`, c.hiddenSize);
  }
  if (headDim(c) % 2 !== 0) fail('hidden_size', 'head_dim (hidden_size / num_attention_heads) must be even for RoPE', 'an even head_dim', headDim(c));
  if (c.numAttentionHeads % c.numKeyValueHeads !== 0) {
    fail('num_key_value_heads', 'num_attention_heads must be divisible by num_key_value_heads',
      `a divisor of ${c.numAttentionHeads}`, c.numKeyValueHeads);
  }
  for (const key of ['resid_pdrop', 'embd_pdrop', 'attention_dropout'] as const) {
    const p = out[FIELDS[key]!.key] as number;
    if (p < 0 || p >= 1) fail(key, 'dropout must be in [0, 1)', 'a number in [0, 1)', p);
  }
  if (!(c.rmsNormEps > 0)) fail('rms_norm_eps', 'must be positive', 'a positive number', c.rmsNormEps);
  if (!(c.ropeTheta > 0)) fail('rope_theta', 'must be positive', 'a positive number', c.ropeTheta);
  return c;
}

/** A `config.json` object for transformers' Phi3ForCausalLM (snake_case, null where unset). */
export function configToHf(c: PhiConfig): Record<string, unknown> {
  const out: Record<string, unknown> = { model_type: 'phi3' };
  const src = c as unknown as Record<string, unknown>;
  for (const [key, spec] of Object.entries(FIELDS)) {
    const v = src[spec.key];
    out[key] = Array.isArray(v) ? [...(v as unknown[])] : v;
  }
  out.rope_scaling = null;
  return out;
}
