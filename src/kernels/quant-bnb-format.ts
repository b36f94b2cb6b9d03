/**
 * The tensors bitsandbytes / transformers write for quantized linear layers (`save_pretrained` of a
 * model loaded with `load_in_4bit` / `load_in_8bit`), as plain records of raw tensors keyed relative to
 * the module (prefix them with e.g. `model.layers.0.self_attn.qkv_proj.`):
 *
 * NF4 (`Params4bit` + `QuantState.as_dict(packed=True)`):
 *   weight                              U8  [ceil(n/2), 1]   packed codes, first element in the high nibble
 *   weight.absmax                       F32 [blocks]         (U8 [blocks] with double quant)
 *   weight.quant_map                    F32 [16]             the NF4 codes
 *   weight.nested_absmax                F32 [ceil(blocks/256)]   double quant only
 *   weight.nested_quant_map             F32 [256]            double quant only (dynamic map)
 *   weight.quant_state.bitsandbytes__nf4 U8 [len]           UTF-8 JSON: {"quant_type": "nf4", "blocksize": 64,
 *       "dtype": "float16", "shape": [out, in], "nested_blocksize": 256, "nested_dtype": "float32",
 *       "nested_offset": 0.0123}   (Python `json.dumps` spacing; the nested_* keys only with double quant)
 *
 * LLM.int8 (`Linear8bitLt._save_to_state_dict`):
 *   weight         I8  [out, in]   row-wise int8 codes
 *   SCB            F32 [out]       row absmax
 *   weight_format  U8  []          0 = row-major (the only layout current bitsandbytes writes)
 */
import type { RawTensor } from '../io/tensor.ts';
import { CliniloraError } from '../errors.ts';
import { NF4_CODES, isNested, type NF4Weight } from './nf4.ts';
import type { Int8Weight } from './int8.ts';

export const NF4_QUANT_STATE_KEY = 'weight.quant_state.bitsandbytes__nf4';

function f32Raw(values: Float32Array, shape: number[]): RawTensor {
  const copy = new Float32Array(values); // own buffer, little-endian on every platform Node runs on
  return { dtype: 'F32', shape, data: new Uint8Array(copy.buffer) };
}

function u8Raw(values: Uint8Array, shape: number[]): RawTensor {
  return { dtype: 'U8', shape, data: new Uint8Array(values) };
}

/** Python's repr of a float (what json.dumps writes): 0.0, 1e-05, 0.25. */
function pyFloat(x: number): string {
  if (Number.isInteger(x) && Math.abs(x) < 1e16) return x.toFixed(1);
  const s = String(x);
  const m = /^(-?[\d.]+)e([+-])(\d+)$/.exec(s);
  if (m === null) return s;
  return `${m[1]}e${m[2]}${m[3]!.padStart(2, '0')}`;
}

export interface BnbNF4Options {
  /** The dtype bitsandbytes records for the original weight: 'float16' (typical), 'bfloat16' or 'float32' (default). */
  dtype?: 'float16' | 'bfloat16' | 'float32';
}

/** NF4 weight → bitsandbytes' serialized tensors (keys relative to the module). */
export function nf4ToBnbRecord(q: NF4Weight, opts: BnbNF4Options = {}): Record<string, RawTensor> {
  const [rows, cols] = q.shape;
  const out: Record<string, RawTensor> = {
    weight: u8Raw(q.data, [q.data.length, 1]),
  };
  const a = q.absmax;
  let json = `{"quant_type": "nf4", "blocksize": ${q.blockSize}, "dtype": "${opts.dtype ?? 'float32'}", "shape": [${rows}, ${cols}]`;
  if (isNested(a)) {
    out['weight.absmax'] = u8Raw(a.qAbsmax, [a.qAbsmax.length]);
    out['weight.quant_map'] = f32Raw(NF4_CODES, [16]);
    out['weight.nested_absmax'] = f32Raw(a.absmax2, [a.absmax2.length]);
    out['weight.nested_quant_map'] = f32Raw(a.code2, [a.code2.length]);
    json += `, "nested_blocksize": ${a.blockSize2}, "nested_dtype": "float32", "nested_offset": ${pyFloat(a.offset)}`;
  } else {
    out['weight.absmax'] = f32Raw(a, [a.length]);
    out['weight.quant_map'] = f32Raw(NF4_CODES, [16]);
  }
  json += '}';
  out[NF4_QUANT_STATE_KEY] = u8Raw(new TextEncoder().encode(json), [Buffer.byteLength(json, 'utf8')]);
  return out;
}

function need(rec: Record<string, RawTensor>, key: string, dtype: RawTensor['dtype'], where: string): RawTensor {
  const t = rec[key];
  if (t === undefined) {
    throw new CliniloraError('E_MISSING', `bitsandbytes NF4 tensor '${key}' is missing`, {
      file: where,
      field: key,
      hint: `present: ${Object.keys(rec).sort().join(', ')}`,
    });
  }
  if (t.dtype !== dtype) {
    throw new CliniloraError('E_DTYPE', 'bitsandbytes tensor has the wrong dtype', { file: where, field: key, expected: dtype, found: t.dtype });
  }
  return t;
}

function rawF32(t: RawTensor): Float32Array {
  const out = new Float32Array(t.data.byteLength / 4);
  new Uint8Array(out.buffer).set(t.data);
  return out;
}

/** bitsandbytes' serialized tensors → NF4 weight. Checks quant_type, the code table and every length. */
export function nf4FromBnbRecord(rec: Record<string, RawTensor>, opts: { file?: string; module?: string } = {}): NF4Weight {
  const where = opts.file ?? opts.module ?? '<record>';
  const stateRaw = need(rec, NF4_QUANT_STATE_KEY, 'U8', where);
  let state: Record<string, unknown>;
  try {
    state = JSON.parse(new TextDecoder().decode(stateRaw.data)) as Record<string, unknown>;
  } catch (e) {
    throw new CliniloraError('E_FORMAT', 'quant_state is not valid JSON', { file: where, field: NF4_QUANT_STATE_KEY }, { cause: e });
  }
  const bad = (field: string, expected: string, found: unknown): never => {
    throw new CliniloraError('E_FORMAT', 'unexpected bitsandbytes quant_state', { file: where, field, expected, found: JSON.stringify(found) });
  };
  if (state['quant_type'] !== 'nf4') bad('quant_type', '"nf4"', state['quant_type']);
  const shape = state['shape'];
  if (!Array.isArray(shape) || shape.length !== 2 || !shape.every((d) => Number.isInteger(d) && d > 0)) bad('shape', '[out, in]', shape);
  const [rows, cols] = shape as [number, number];
  const blockSize = state['blocksize'];
  if (typeof blockSize !== 'number' || !Number.isInteger(Math.log2(blockSize))) bad('blocksize', 'a power of two', blockSize);
  const n = rows * cols;
  const blocks = Math.ceil(n / (blockSize as number));

  const weight = need(rec, 'weight', 'U8', where);
  if (weight.data.length !== Math.ceil(n / 2)) bad('weight', `${Math.ceil(n / 2)} packed bytes`, weight.data.length);
  const qmap = rawF32(need(rec, 'weight.quant_map', 'F32', where));
  if (qmap.length !== 16 || qmap.some((v, i) => Math.abs(v - NF4_CODES[i]!) > 1e-6)) {
    bad('weight.quant_map', 'the 16 NF4 codes', Array.from(qmap.slice(0, 4)));
  }
  const nested = state['nested_blocksize'] !== undefined;
  let absmax: NF4Weight['absmax'];
  if (nested) {
    const q = need(rec, 'weight.absmax', 'U8', where).data;
    if (q.length !== blocks) bad('weight.absmax', `${blocks} values`, q.length);
    const bs2 = state['nested_blocksize'];
    if (typeof bs2 !== 'number' || !Number.isInteger(bs2) || bs2 <= 0) bad('nested_blocksize', 'a positive integer', bs2);
    const absmax2 = rawF32(need(rec, 'weight.nested_absmax', 'F32', where));
    if (absmax2.length !== Math.ceil(blocks / (bs2 as number))) bad('weight.nested_absmax', `${Math.ceil(blocks / (bs2 as number))} values`, absmax2.length);
    const code2 = rawF32(need(rec, 'weight.nested_quant_map', 'F32', where));
    if (code2.length !== 256) bad('weight.nested_quant_map', '256 values', code2.length);
    const offset = state['nested_offset'];
    if (typeof offset !== 'number') bad('nested_offset', 'a number', offset);
    absmax = { qAbsmax: new Uint8Array(q), absmax2, offset: Math.fround(offset as number), blockSize2: bs2 as number, code2 };
  } else {
    absmax = rawF32(need(rec, 'weight.absmax', 'F32', where));
    if (absmax.length !== blocks) bad('weight.absmax', `${blocks} values`, absmax.length);
  }
  return { shape: [rows, cols], data: new Uint8Array(weight.data), absmax, blockSize: blockSize as number };
}

/** Int8 weight → bitsandbytes' `Linear8bitLt` tensors. */
export function int8ToBnbRecord(q: Int8Weight): Record<string, RawTensor> {
  const [rows, cols] = q.shape;
  return {
    weight: { dtype: 'I8', shape: [rows, cols], data: new Uint8Array(q.data.buffer.slice(q.data.byteOffset, q.data.byteOffset + q.data.byteLength)) },
    SCB: f32Raw(q.rowAbsmax, [rows]),
    weight_format: u8Raw(Uint8Array.of(0), []),
  };
}

/** bitsandbytes' `Linear8bitLt` tensors → Int8 weight (row-major layout only). */
export function int8FromBnbRecord(rec: Record<string, RawTensor>, opts: { file?: string; module?: string } = {}): Int8Weight {
  const where = opts.file ?? opts.module ?? '<record>';
  const w = rec['weight'];
  if (w === undefined || w.dtype !== 'I8' || w.shape.length !== 2) {
    throw new CliniloraError('E_FORMAT', 'int8 weight must be an I8 tensor [out, in]', {
      file: where,
      field: 'weight',
      expected: 'I8 [out, in]',
      found: w === undefined ? 'missing' : `${w.dtype} [${w.shape.join(', ')}]`,
    });
  }
  const [rows, cols] = w.shape as [number, number];
  const scbRaw = rec['SCB'];
  if (scbRaw === undefined || scbRaw.dtype !== 'F32' || scbRaw.data.byteLength !== rows * 4) {
    throw new CliniloraError('E_FORMAT', 'int8 row scales (SCB) must be F32 [out]', {
      file: where,
      field: 'SCB',
      expected: `F32 [${rows}]`,
      found: scbRaw === undefined ? 'missing' : `${scbRaw.dtype} [${scbRaw.shape.join(', ')}]`,
    });
  }
  const fmt = rec['weight_format'];
  if (fmt !== undefined && fmt.data[0] !== 0) {
    throw new CliniloraError('E_UNSUPPORTED', 'only the row-major int8 weight format (0) is supported', {
      file: where,
      field: 'weight_format',
      expected: '0',
      found: String(fmt.data[0]),
    });
  }
  const data = new Int8Array(rows * cols);
  new Uint8Array(data.buffer).set(w.data);
  return { shape: [rows, cols], data, rowAbsmax: rawF32(scbRaw) };
}
