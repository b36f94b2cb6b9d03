/**
 * Phi-3 from and to Hugging Face checkpoint directories (`config.json` + `model.safetensors`, or
 * shards with `model.safetensors.index.json`).
 *
 * Loading streams: a tensor is read when the model asks for it, and a linear weight is converted to
 * float32 and quantized in row chunks of ~4 M values read straight from the shard. Besides the model
 * only one chunk (its raw bytes and floats) is alive — plus, for a half-precision token table kept as
 * is, that table — so a bf16 Phi-3-mini loads into NF4 without ever being fp32.
 * Chunks are whole NF4 blocks, so the result is bit for bit what `quantizeLinear` gives on the whole
 * weight. Before anything is built, every tensor the config implies is checked (present, shape, float
 * dtype, or a bitsandbytes NF4 / int8 record) and all problems are reported in one error.
 *
 * Saving streams the other way: each tensor is produced only when the writer reaches it — the
 * dequantized weight for int8/NF4 layers, or with `quantized` their bitsandbytes records.
 */
import { join } from 'node:path';
import { closeSync, existsSync, openSync, readSync } from 'node:fs';
import { CliniloraError, type ErrorCode } from '../errors.ts';
import { CONFIG_FILE, INDEX_FILE, SINGLE_FILE, openCheckpoint, readJsonFile, writeCheckpoint, type HfCheckpoint, type WrittenCheckpoint } from '../io/hf-checkpoint.ts';
import type { LazyTensor, TensorSource } from '../io/safetensors.ts';
import { DTYPE_BYTES, fromFloat32, numel, toFloat32, type RawTensor } from '../io/tensor.ts';
import type { Linear } from '../kernels/linear.ts';
import { QUANT_KINDS, quantizeLinear, type QuantKind } from '../kernels/quant-linear.ts';
import { NF4Linear } from '../kernels/nf4-linear.ts';
import { Int8Linear, DEFAULT_INT8_THRESHOLD } from '../kernels/int8-linear.ts';
import { NF4_BLOCK_SIZE, dequantizeNF4, doubleQuantize, quantizeNF4 } from '../kernels/nf4.ts';
import { dequantizeInt8, quantizeInt8 } from '../kernels/int8.ts';
import { NF4_QUANT_STATE_KEY, int8FromBnbRecord, int8ToBnbRecord, nf4FromBnbRecord, nf4ToBnbRecord } from '../kernels/quant-bnb-format.ts';
import { toHalfBits, type EmbeddingStorage, type HalfBits } from '../kernels/embedding.ts';
import { configFromHf, configToHf, headDim, type PhiConfig } from './config.ts';
import { Phi3ForCausalLM, type WeightSource } from './phi3.ts';
import type { LinearFactory } from './linear-container.ts';

export interface LoadPhi3Options {
  /** Quantization of float linear weights (default 'none'). A layer stored by bitsandbytes stays as
   *  stored unless another kind is named here (then it is dequantized and requantized). */
  quant?: QuantKind;
  /** NF4: double-quantize the absmax statistics. Default false. */
  doubleQuant?: boolean;
  /** int8 outlier threshold; default the config's `quantization_config.llm_int8_threshold`, else 6. */
  threshold?: number;
  /** Token table storage; default the checkpoint's own precision (F16 → float16, BF16 → bfloat16). */
  embeddingStorage?: EmbeddingStorage;
  /** All float weights trainable (pretraining); needs a float32 embedding. Default false. */
  trainable?: boolean;
  /**
   * Linear modules that stay float when `quant` is set (transformers' `llm_int8_skip_modules`).
   * loadPhi3's default: the checkpoint's `quantization_config.llm_int8_skip_modules`, else ['lm_head'] —
   * transformers keeps the output head in full precision too. buildPhi3's default: none.
   */
  skipModules?: readonly string[];
}

/** A float tensor handed over in ranges of its first dimension, so a big weight never needs a full float copy. */
export interface RowReader {
  shape: number[];
  /** Rows [r0, r1) as float32, row-major (for a 1-D tensor a row is one value). */
  read(r0: number, r1: number): Float32Array;
  /** The whole tensor as fp16/bf16 bits when it is stored that way (kept as is for a half embedding). */
  half?(): HalfBits | undefined;
}

export interface ExpectedTensor {
  name: string;
  shape: number[];
  /** The linear module (HF name without `.weight`) when this is a linear weight. */
  module?: string;
}

const EMBED = 'model.embed_tokens.weight';
const FLOAT_DTYPES = ['F32', 'F16', 'BF16'];
/** Values converted and quantized at a time (16 MB of float32). */
const CHUNK_ELEMENTS = 1 << 22;

/** Every tensor a Phi-3 checkpoint of this config holds, in `namedWeights()` order (no lm_head when tied). */
export function phi3Tensors(c: PhiConfig): ExpectedTensor[] {
  const D = c.hiddenSize;
  const hd = headDim(c);
  const out: ExpectedTensor[] = [{ name: EMBED, shape: [c.vocabSize, D] }];
  const lin = (module: string, o: number, i: number) => out.push({ name: `${module}.weight`, shape: [o, i], module });
  for (let l = 0; l < c.numHiddenLayers; l++) {
    const p = `model.layers.${l}`;
    out.push({ name: `${p}.input_layernorm.weight`, shape: [D] });
    lin(`${p}.self_attn.qkv_proj`, (c.numAttentionHeads + 2 * c.numKeyValueHeads) * hd, D);
    lin(`${p}.self_attn.o_proj`, D, c.numAttentionHeads * hd);
    out.push({ name: `${p}.post_attention_layernorm.weight`, shape: [D] });
    lin(`${p}.mlp.gate_up_proj`, 2 * c.intermediateSize, D);
    lin(`${p}.mlp.down_proj`, D, c.intermediateSize);
  }
  out.push({ name: 'model.norm.weight', shape: [D] });
  if (!c.tieWordEmbeddings) lin('lm_head', c.vocabSize, D);
  return out;
}

// ---- chunked quantization -------------------------------------------------------------------

export interface QuantizeRowsOptions {
  quant: QuantKind;
  doubleQuant?: boolean;
  threshold?: number;
  trainable?: boolean;
  /** Module name for errors. */
  name?: string;
  /** Values per chunk (rounded to whole NF4 blocks); default 4 M. */
  chunkElements?: number;
}

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}

/**
 * Builds a linear layer from a [out, in] weight read in row chunks; equal, byte for byte, to
 * `quantizeLinear` on the whole weight: NF4 chunks hold whole 64-blocks (so an even number of
 * values) and double quantization runs once over all block absmax values; int8 is row-wise anyway.
 */
export function quantizeRows(reader: RowReader, opts: QuantizeRowsOptions): Linear {
  const [rows, cols] = reader.shape as [number, number];
  const n = rows * cols;
  const unit = NF4_BLOCK_SIZE / gcd(cols, NF4_BLOCK_SIZE); // rows per whole number of blocks
  const step = Math.max(unit, Math.floor((opts.chunkElements ?? CHUNK_ELEMENTS) / cols / unit) * unit);
  const each = (f: (chunk: Float32Array, r0: number, r1: number) => void): void => {
    for (let r0 = 0; r0 < rows; r0 += step) {
      const r1 = Math.min(rows, r0 + step);
      f(reader.read(r0, r1), r0, r1);
    }
  };
  switch (opts.quant) {
    case 'none': {
      const w = new Float32Array(n);
      each((chunk, r0) => w.set(chunk, r0 * cols));
      return quantizeLinear(w, rows, cols, { quant: 'none', trainable: opts.trainable ?? false, name: opts.name });
    }
    case 'int8': {
      const data = new Int8Array(n); // [out, in]
      const rowAbsmax = new Float32Array(rows); // [out]
      each((chunk, r0, r1) => {
        const q = quantizeInt8(chunk, [r1 - r0, cols]);
        data.set(q.data, r0 * cols);
        rowAbsmax.set(q.rowAbsmax, r0);
      });
      return new Int8Linear({ shape: [rows, cols], data, rowAbsmax }, { threshold: opts.threshold ?? DEFAULT_INT8_THRESHOLD });
    }
    case 'nf4': {
      const data = new Uint8Array(Math.ceil(n / 2)); // two codes a byte
      const absmax = new Float32Array(Math.ceil(n / NF4_BLOCK_SIZE)); // [blocks]
      each((chunk, r0, r1) => {
        const q = quantizeNF4(chunk, [r1 - r0, cols]);
        data.set(q.data, (r0 * cols) / 2);
        absmax.set(q.absmax as Float32Array, (r0 * cols) / NF4_BLOCK_SIZE);
      });
      const a = opts.doubleQuant === true ? doubleQuantize(absmax) : absmax;
      return new NF4Linear({ shape: [rows, cols], data, absmax: a, blockSize: NF4_BLOCK_SIZE });
    }
    default:
      throw new CliniloraError('E_ARG', 'unknown quantization kind', { field: 'quant', expected: QUANT_KINDS.join(' | '), found: String(opts.quant) });
  }
}

/** A RowReader over float32 values already in memory. */
export function memoryRows(values: Float32Array, shape: number[]): RowReader {
  const rowLen = numel(shape.slice(1));
  return { shape, read: (r0, r1) => values.subarray(r0 * rowLen, r1 * rowLen) };
}

// ---- building the model from row readers ----------------------------------------------------

export interface BuildPhi3Options extends LoadPhi3Options {
  /** A layer the source already holds quantized; undefined: build it from `open(module.weight)`. */
  prebuilt?: (module: string) => Linear | undefined;
}

/**
 * Builds a Phi-3 from a tensor opener (a checkpoint, or random weights in the memory benchmark), one
 * tensor at a time. The model constructor hands each linear factory a float array; this factory reads
 * the tensor itself in chunks instead, so the source gives it a view of one shared placeholder,
 * allocated once and never written (the OS maps no pages for untouched memory).
 */
export function buildPhi3(config: PhiConfig, open: (name: string) => RowReader, opts: BuildPhi3Options = {}): Phi3ForCausalLM {
  const c = config;
  const trainable = opts.trainable ?? false;
  if (trainable && opts.embeddingStorage !== undefined && opts.embeddingStorage !== 'float32') {
    throw new CliniloraError('E_ARG', 'a trainable model needs a float32 embedding', { field: 'embeddingStorage', expected: "'float32'", found: `'${opts.embeddingStorage}'` });
  }
  const expected = phi3Tensors(c);
  const linears = new Map(expected.filter((e) => e.module !== undefined).map((e) => [e.name, e]));
  const V = c.vocabSize;
  const D = c.hiddenSize;
  const biggest = Math.max(V * D, ...[...linears.values()].map((e) => numel(e.shape)));
  let shared: Float32Array | undefined;
  const placeholder = (n: number) => (shared ??= new Float32Array(biggest)).subarray(0, n);
  // The table's storage is decided before building: the checkpoint's half dtype is kept as is.
  let embed: RowReader | undefined = open(EMBED);
  let embedHalf = embed.half?.();
  const storage: EmbeddingStorage = opts.embeddingStorage ?? (trainable ? 'float32' : embedHalf?.dtype ?? 'float32');
  const table = (): Float32Array | HalfBits => {
    const r = embed!;
    const half = embedHalf;
    embed = embedHalf = undefined; // let the raw bytes go once the Embedding holds what it needs
    if (storage === 'float32') return r.read(0, V);
    if (half !== undefined && half.dtype === storage) return half;
    const bits = new Uint16Array(V * D); // converted chunk by chunk: no full float32 copy
    const step = Math.max(1, Math.floor(CHUNK_ELEMENTS / D));
    for (let r0 = 0; r0 < V; r0 += step) bits.set(toHalfBits(r.read(r0, Math.min(V, r0 + step)), storage).bits, r0 * D);
    return { dtype: storage, bits };
  };
  const source: WeightSource = (name) => {
    const lin = linears.get(name);
    if (lin !== undefined) return placeholder(numel(lin.shape));
    // A second request is the tied head's: its factory reads the table itself.
    if (name === EMBED) return embed === undefined ? placeholder(V * D) : table();
    const r = open(name);
    return new Float32Array(r.read(0, r.shape[0]!));
  };
  const skip = new Set(opts.skipModules ?? []);
  const factory: LinearFactory = (module) => {
    const pre = opts.prebuilt?.(module);
    if (pre !== undefined) return pre;
    const tensor = module === 'lm_head' && c.tieWordEmbeddings ? EMBED : `${module}.weight`;
    const quant = skip.has(module) ? 'none' : (opts.quant ?? 'none');
    return quantizeRows(open(tensor), { quant, doubleQuant: opts.doubleQuant, threshold: opts.threshold, trainable, name: module });
  };
  return Phi3ForCausalLM.fromWeights(c, source, { linearFactory: factory, trainable, embedding: { storage, trainable } });
}

// ---- loading ----------------------------------------------------------------------------------

/**
 * Row ranges of tensors read straight from the shard files (header length, then data offsets, as
 * safetensors lays them out), so a big weight is never read whole: loading lm_head of a bf16
 * Phi-3-mini then costs one 16 MB chunk, not its 197 MB. Offsets were checked against the file size
 * when openCheckpoint parsed the headers.
 */
function shardRanges(dir: string): { read(file: string, start: number, length: number): Uint8Array; close(): void } {
  const files = new Map<string, { fd: number; dataStart: number }>();
  const readAt = (fd: number, path: string, length: number, position: number): Buffer => {
    const buf = Buffer.alloc(length);
    for (let got = 0; got < length; ) {
      const n = readSync(fd, buf, got, length - got, position + got);
      if (n === 0) throw new CliniloraError('E_FORMAT', 'file ends inside tensor data', { file: path, expected: `${length} bytes at ${position}`, found: `${got}`, hint: 'the file changed while loading, or is truncated' });
      got += n;
    }
    return buf;
  };
  return {
    read(file, start, length) {
      let f = files.get(file);
      if (f === undefined) {
        const fd = openSync(join(dir, file), 'r');
        f = { fd, dataStart: 8 + Number(readAt(fd, join(dir, file), 8, 0).readBigUInt64LE(0)) };
        files.set(file, f);
      }
      return readAt(f.fd, join(dir, file), length, f.dataStart + start);
    },
    close() {
      for (const f of files.values()) closeSync(f.fd);
    },
  };
}

/** A RowReader over one checkpoint tensor: row ranges from disk; `half()` reads the whole tensor. */
function checkpointRows(ck: HfCheckpoint, ranges: ReturnType<typeof shardRanges>, name: string): RowReader {
  const info = ck.info(name);
  const rowLen = numel(info.shape.slice(1));
  const rowBytes = DTYPE_BYTES[info.dtype] * rowLen;
  return {
    shape: info.shape,
    read: (r0, r1) => toFloat32({ dtype: info.dtype, shape: [r1 - r0, rowLen], data: ranges.read(info.file, info.dataOffsets[0] + r0 * rowBytes, (r1 - r0) * rowBytes) }),
    half() {
      if (info.dtype !== 'F16' && info.dtype !== 'BF16') return undefined;
      const t = ck.read(name);
      const n = numel(t.shape);
      const bits = t.data.byteOffset % 2 === 0 ? new Uint16Array(t.data.buffer, t.data.byteOffset, n) : new Uint16Array(new Uint8Array(t.data).buffer);
      return { dtype: info.dtype === 'F16' ? 'float16' : 'bfloat16', bits };
    },
  };
}

interface Problem {
  code: ErrorCode;
  file: string;
  name: string;
  message: string;
  expected?: string;
  found?: string;
}

type Stored = 'nf4' | 'int8';
const shapeText = (s: readonly number[]) => `[${s.join(', ')}]`;

/**
 * Checks every tensor the config implies; returns which linear modules are stored quantized by
 * bitsandbytes. Throws one error listing all problems.
 */
function checkTensors(ck: HfCheckpoint, c: PhiConfig, dir: string): Map<string, Stored> {
  const problems: Problem[] = [];
  const stored = new Map<string, Stored>();
  const listing = join(dir, existsSync(join(dir, INDEX_FILE)) ? INDEX_FILE : SINGLE_FILE);
  const fileOf = (name: string) => join(dir, ck.info(name).file);
  const add = (p: Problem) => problems.push(p);
  const floatTensor = (name: string, shape: number[], what = 'tensor'): void => {
    const i = ck.info(name);
    if (!FLOAT_DTYPES.includes(i.dtype)) {
      add({ code: 'E_DTYPE', file: fileOf(name), name, message: `${what} must be a float tensor`, expected: FLOAT_DTYPES.join(', '), found: i.dtype });
    }
    if (shapeText(i.shape) !== shapeText(shape)) {
      add({ code: 'E_SHAPE', file: fileOf(name), name, message: `${what} has the wrong shape`, expected: shapeText(shape), found: shapeText(i.shape) });
    }
  };
  for (const e of phi3Tensors(c)) {
    const m = e.module;
    if (!ck.has(e.name)) {
      const unfused = m !== undefined && /qkv_proj|gate_up_proj/.test(m) && ck.has(`${m.replace('qkv_proj', 'q_proj').replace('gate_up_proj', 'gate_proj')}.weight`);
      add({ code: 'E_MISSING', file: listing, name: e.name, message: unfused ? 'missing: the checkpoint has unfused q/k/v or gate/up projections; only fused Phi-3 checkpoints are supported' : 'tensor is missing', expected: shapeText(e.shape), found: 'nothing' });
      continue;
    }
    if (m === undefined) {
      floatTensor(e.name, e.shape);
      continue;
    }
    const w = ck.info(e.name);
    if (ck.has(`${m}.${NF4_QUANT_STATE_KEY}`)) {
      let shape: unknown;
      try {
        shape = (JSON.parse(new TextDecoder().decode(ck.read(`${m}.${NF4_QUANT_STATE_KEY}`).data)) as Record<string, unknown>)['shape'];
      } catch {
        shape = 'unreadable quant_state';
      }
      if (JSON.stringify(shape) !== JSON.stringify(e.shape)) {
        add({ code: 'E_SHAPE', file: fileOf(e.name), name: `${m}.${NF4_QUANT_STATE_KEY}`, message: 'NF4 weight has the wrong shape', expected: shapeText(e.shape), found: JSON.stringify(shape) });
      }
      stored.set(m, 'nf4');
    } else if (ck.has(`${m}.weight.quant_state.bitsandbytes__fp4`)) {
      add({ code: 'E_UNSUPPORTED', file: fileOf(e.name), name: e.name, message: 'bitsandbytes FP4 weights are not supported', expected: 'nf4 or int8', found: 'fp4' });
    } else if (w.dtype === 'I8' && ck.has(`${m}.SCB`)) {
      if (shapeText(w.shape) !== shapeText(e.shape)) add({ code: 'E_SHAPE', file: fileOf(e.name), name: e.name, message: 'int8 weight has the wrong shape', expected: shapeText(e.shape), found: shapeText(w.shape) });
      stored.set(m, 'int8');
    } else {
      floatTensor(e.name, e.shape, 'weight');
    }
  }
  // Tensors of layers the config does not have (a config.json from a smaller model?).
  const extra = new Map<number, string[]>();
  for (const name of ck.names()) {
    const k = /^model\.layers\.(\d+)\./.exec(name);
    if (k !== null && Number(k[1]) >= c.numHiddenLayers) extra.set(Number(k[1]), [...(extra.get(Number(k[1])) ?? []), name]);
  }
  for (const [l, names] of [...extra].sort((a, b) => a[0] - b[0])) {
    add({ code: 'E_SHAPE', file: fileOf(names[0]!), name: names[0]!, message: `layer ${l} is beyond num_hidden_layers (${names.length} tensors)`, expected: `layers 0…${c.numHiddenLayers - 1}`, found: `model.layers.${l}` });
  }
  if (problems.length === 1) {
    const p = problems[0]!;
    throw new CliniloraError(p.code, p.message, { file: p.file, field: p.name, expected: p.expected, found: p.found, hint: 'the shapes follow from config.json; is it the config of this checkpoint?' });
  }
  if (problems.length > 1) {
    const lines = problems.map((p) => `  ${p.file} '${p.name}': ${p.message}${p.expected !== undefined ? ` (expected ${p.expected}, found ${p.found})` : ''}`);
    const codes = new Set(problems.map((p) => p.code));
    throw new CliniloraError(codes.size === 1 ? problems[0]!.code : 'E_FORMAT', `the checkpoint does not match its config.json (${problems.length} problems):\n${lines.join('\n')}\n`, {
      file: dir,
      hint: 'the shapes follow from config.json; is it the config of this checkpoint?',
    });
  }
  return stored;
}

/** A bitsandbytes-stored layer as NF4Linear / Int8Linear (or, if another kind is asked for, requantized). */
function storedLayer(ck: HfCheckpoint, dir: string, module: string, kind: Stored, opts: LoadPhi3Options): Linear {
  const rec: Record<string, RawTensor> = {};
  const prefix = `${module}.`;
  for (const name of ck.names()) if (name.startsWith(prefix)) rec[name.slice(prefix.length)] = ck.read(name);
  const file = join(dir, ck.info(`${module}.weight`).file);
  const layer = kind === 'nf4' ? new NF4Linear(nf4FromBnbRecord(rec, { file, module })) : new Int8Linear(int8FromBnbRecord(rec, { file, module }), { threshold: opts.threshold ?? DEFAULT_INT8_THRESHOLD });
  if (opts.quant === undefined || opts.quant === kind) return layer;
  const w = layer instanceof NF4Linear ? dequantizeNF4(layer.q) : dequantizeInt8((layer as Int8Linear).q);
  return quantizeRows(memoryRows(w, [layer.outFeatures, layer.inFeatures]), { ...opts, quant: opts.quant, name: module });
}

/**
 * Loads a Phi-3 from a Hugging Face checkpoint directory, quantizing linear weights as they load.
 * Float tensors may be F32, F16 or BF16; bitsandbytes NF4 / int8 layers load as stored.
 */
export function loadPhi3(dir: string, opts: LoadPhi3Options = {}): Phi3ForCausalLM {
  const cfgPath = join(dir, CONFIG_FILE);
  const json = readJsonFile(cfgPath, 'a Hugging Face checkpoint directory needs config.json');
  const config = configFromHf(json, { file: cfgPath });
  const qc = (json as Record<string, unknown>)['quantization_config'] as Record<string, unknown> | undefined;
  const cfgThreshold = typeof qc?.['llm_int8_threshold'] === 'number' ? (qc['llm_int8_threshold'] as number) : undefined;
  const cfgSkip = Array.isArray(qc?.['llm_int8_skip_modules']) ? (qc['llm_int8_skip_modules'] as unknown[]).filter((m): m is string => typeof m === 'string') : undefined;
  const o: LoadPhi3Options = { ...opts, threshold: opts.threshold ?? cfgThreshold, skipModules: opts.skipModules ?? cfgSkip ?? ['lm_head'] };
  const ck = openCheckpoint(dir);
  const ranges = shardRanges(dir);
  try {
    const stored = checkTensors(ck, config, dir);
    return buildPhi3(config, (name) => checkpointRows(ck, ranges, name), {
      ...o,
      prebuilt: (m) => {
        const kind = stored.get(m);
        return kind === undefined ? undefined : storedLayer(ck, dir, m, kind, o);
      },
    });
  } finally {
    ranges.close();
    ck.close();
  }
}

// ---- saving -----------------------------------------------------------------------------------

export interface SavePhi3Options {
  /** dtype of float tensors. Default 'F32'. */
  dtype?: 'F32' | 'F16' | 'BF16';
  /** Start a new shard past this many bytes (default: one file). */
  maxShardBytes?: number;
  /** Write int8/NF4 layers as bitsandbytes records (+ `quantization_config`) instead of dequantized floats. */
  quantized?: boolean;
}

const TORCH_DTYPE = { F32: 'float32', F16: 'float16', BF16: 'bfloat16' } as const;

/** Float data of a non-linear weight (embedding, norms). */
function plainWeight(model: Phi3ForCausalLM, name: string): Float32Array {
  if (name === EMBED) return model.embedTokens.weightData();
  if (name === 'model.norm.weight') return model.norm.weight.dataSync() as Float32Array;
  const m = /^model\.layers\.(\d+)\.(input_layernorm|post_attention_layernorm)\.weight$/.exec(name)!;
  const layer = model.layers[Number(m[1])]!;
  return (m[2] === 'input_layernorm' ? layer.inputLayernorm : layer.postAttentionLayernorm).weight.dataSync() as Float32Array;
}

/**
 * Writes the model as a Hugging Face checkpoint directory, atomically, producing one tensor at a time
 * (names as `namedWeights()`). Quantized layers are written dequantized in `dtype` unless `quantized`.
 */
export function savePhi3(dir: string, model: Phi3ForCausalLM, opts: SavePhi3Options = {}): WrittenCheckpoint {
  const c = model.config;
  const dtype = opts.dtype ?? 'F32';
  const entries: Array<[string, TensorSource]> = [];
  const floats = (shape: number[], values: () => Float32Array): LazyTensor => ({ dtype, shape, load: () => fromFloat32(values(), shape, dtype).data });
  const quantKinds = new Set<string>();
  const floatModules: string[] = [];
  let doubleQuant = false;
  let threshold = DEFAULT_INT8_THRESHOLD;
  for (const e of phi3Tensors(c)) {
    if (e.module === undefined) {
      entries.push([e.name, floats(e.shape, () => plainWeight(model, e.name))]);
      continue;
    }
    const layer = model.getLinear(e.module);
    if (opts.quantized === true && (layer instanceof NF4Linear || layer instanceof Int8Linear)) {
      const record = () => (layer instanceof NF4Linear ? nf4ToBnbRecord(layer.q, { dtype: TORCH_DTYPE[dtype] }) : int8ToBnbRecord(layer.q));
      // Keys, dtypes and shapes now; the bytes again when written (one module's record alive at a time).
      let cached: Record<string, RawTensor> | undefined;
      for (const [key, t] of Object.entries(record())) {
        entries.push([`${e.module}.${key}`, { dtype: t.dtype, shape: t.shape, load: () => (cached ??= record())[key]!.data }]);
      }
      quantKinds.add(layer.kind);
      if (layer instanceof NF4Linear) doubleQuant ||= layer.doubleQuant;
      else threshold = layer.threshold;
      continue;
    }
    if (opts.quantized === true && layer.kind === 'lora') {
      throw new CliniloraError('E_UNSUPPORTED', 'a LoRA-wrapped layer cannot be written as a bitsandbytes record', {
        file: dir,
        field: e.module,
        hint: 'save the adapter with the PEFT files and the base separately, or save without `quantized` (merged float weights)',
      });
    }
    floatModules.push(e.module);
    entries.push([e.name, floats(e.shape, () => {
      const w = layer.weight();
      const d = w.dataSync() as Float32Array;
      w.dispose();
      return d;
    })]);
  }
  const config = { ...configToHf(c), torch_dtype: TORCH_DTYPE[dtype] } as Record<string, unknown>;
  if (quantKinds.size > 1) {
    throw new CliniloraError('E_UNSUPPORTED', 'one checkpoint cannot hold both NF4 and int8 bitsandbytes layers', { file: dir, found: [...quantKinds].join(' + ') });
  }
  if (quantKinds.size === 1) {
    const four = quantKinds.has('nf4');
    config['quantization_config'] = {
      quant_method: 'bitsandbytes',
      load_in_4bit: four,
      load_in_8bit: !four,
      _load_in_4bit: four,
      _load_in_8bit: !four,
      bnb_4bit_quant_type: 'nf4',
      bnb_4bit_use_double_quant: doubleQuant,
      bnb_4bit_compute_dtype: TORCH_DTYPE[dtype],
      bnb_4bit_quant_storage: 'uint8',
      llm_int8_threshold: threshold,
      llm_int8_skip_modules: floatModules,
      llm_int8_has_fp16_weight: false,
      llm_int8_enable_fp32_cpu_offload: false,
    };
  }
  return writeCheckpoint(dir, config, entries, { maxShardBytes: opts.maxShardBytes });
}
