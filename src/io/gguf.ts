/**
 * GGUF v3 (llama.cpp's file format), read and write, little endian only.
 *
 * Layout: "GGUF" u32 version, u64 tensor count, u64 kv count, then key/value pairs (key: u64 length
 * + UTF-8; u32 value type; value), then tensor infos (name, u32 n_dims, u64 ne[n_dims] with ne[0]
 * the innermost/contiguous dimension, u32 ggml type, u64 offset from the data section), padding to
 * `general.alignment` (default 32), then the tensor data, each tensor starting aligned.
 *
 * Reading parses the header with @huggingface/gguf, then checks what that parser does not: it reads
 * zeros past the end of a truncated file instead of failing, so we check the header end, the kv
 * count and every tensor's byte range against the file size ourselves.
 */
import { closeSync, fsyncSync, ftruncateSync, mkdirSync, openSync, readSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { gguf as parseGgufHeader, GGUFValueType, type MetadataValue } from '@huggingface/gguf';
import { CliniloraError } from '../errors.ts';
import { tempPathFor } from '../util/atomic.ts';
import { numel, toFloat32, type RawTensor } from './tensor.ts';
import { dequantize, encodeGgml, type GgmlType } from './ggml-quant.ts';

export type GgufScalarType = 'u8' | 'i8' | 'u16' | 'i16' | 'u32' | 'i32' | 'u64' | 'i64' | 'f32' | 'f64' | 'bool' | 'string';
export type GgufScalar = number | bigint | boolean | string;
/** A typed metadata value; u64/i64 read back as bigint (write either number or bigint). */
export type GgufValue =
  | { type: GgufScalarType; value: GgufScalar }
  | { type: 'array'; itemType: GgufScalarType; value: GgufScalar[] };

export { quantizeQ8_0, quantizeQ4_0, dequantize, encodeGgml, type GgmlType } from './ggml-quant.ts';

/** ggml tensor type ids (ggml.h). */
const GGML_TYPE_ID: Readonly<Record<GgmlType, number>> = { F32: 0, F16: 1, Q4_0: 2, Q8_0: 8, BF16: 30 };
/** [elements per block, bytes per block] */
const GGML_BLOCK: Readonly<Record<GgmlType, readonly [number, number]>> = { F32: [1, 4], F16: [1, 2], BF16: [1, 2], Q4_0: [32, 18], Q8_0: [32, 34] };
const VALUE_TYPE_ID: Readonly<Record<GgufScalarType | 'array', number>> = {
  u8: 0, i8: 1, u16: 2, i16: 3, u32: 4, i32: 5, f32: 6, bool: 7, string: 8, array: 9, u64: 10, i64: 11, f64: 12,
};
const VALUE_TYPE_NAME = Object.fromEntries(Object.entries(VALUE_TYPE_ID).map(([k, v]) => [v, k])) as Record<number, GgufScalarType | 'array'>;
export const GGUF_DEFAULT_ALIGNMENT = 32;

export interface GgufTensorInfo {
  name: string;
  /** GGUF order: dims[0] is the innermost dimension (the reverse of a PyTorch shape). */
  dims: number[];
  /** A GgmlType, or `ggml type <id>` for types this module cannot decode. */
  type: GgmlType | `ggml type ${number}`;
  /** Offset from the start of the data section. */
  offset: number;
  /** Bytes of data (undefined for types we cannot size). */
  byteLength: number | undefined;
}

export interface GgufFile {
  readonly path: string;
  readonly version: number;
  /** Key/value metadata in file order (the header counts are not included). */
  readonly metadata: Record<string, GgufValue>;
  readonly tensors: GgufTensorInfo[];
  readonly alignment: number;
  /** Absolute file offset of the data section. */
  readonly dataOffset: number;
  /** A metadata value without its type, or undefined. */
  get(key: string): GgufScalar | GgufScalar[] | undefined;
  /** The tensor's raw bytes in its ggml type. */
  readTensorRaw(name: string): { info: GgufTensorInfo; data: Uint8Array };
  /** The tensor dequantized to float32, in GGUF element order (dims[0] fastest). */
  readTensor(name: string): Float32Array;
  close(): void;
}

export function ggmlByteSize(type: GgmlType, dims: readonly number[]): number {
  const [blk, bytes] = GGML_BLOCK[type];
  return (numel(dims) / blk) * bytes;
}

function formatError(path: string, message: string, extra: { field?: string; expected?: string; found?: string; hint?: string } = {}): CliniloraError {
  return new CliniloraError('E_FORMAT', message, { file: path, ...extra });
}

/** Opens a GGUF file: parses and validates the header; reads tensors on demand. */
export async function openGguf(path: string): Promise<GgufFile> {
  let size: number;
  try {
    size = statSync(path).size;
  } catch (e) {
    throw new CliniloraError('E_MISSING', 'GGUF file not found or unreadable', { file: path, found: (e as Error).message }, { cause: e });
  }
  if (size < 24) throw formatError(path, 'file too short for a GGUF header', { expected: 'at least 24 bytes', found: `${size} bytes` });
  let parsed;
  try {
    parsed = await parseGgufHeader(path, { allowLocalFile: true, typedMetadata: true });
  } catch (e) {
    throw formatError(path, `not a readable GGUF file: ${(e as Error).message}`, { hint: 'the file is truncated, corrupt or not GGUF' });
  }
  if (!parsed.littleEndian) throw new CliniloraError('E_UNSUPPORTED', 'big-endian GGUF is not supported', { file: path });
  const headerEnd = parsed.tensorInfoByteRange[1];
  if (headerEnd > size) {
    throw formatError(path, 'file ends inside the GGUF header', { expected: `at least ${headerEnd} bytes`, found: `${size}`, hint: 'the file is truncated' });
  }
  const metadata: Record<string, GgufValue> = {};
  for (const [key, entry] of Object.entries(parsed.typedMetadata)) {
    if (key === 'version' || key === 'tensor_count' || key === 'kv_count') continue;
    metadata[key] = typedValue(path, key, entry as { value: MetadataValue; type: GGUFValueType; subType?: GGUFValueType });
  }
  const kvCount = Number(parsed.metadata.kv_count);
  if (Object.keys(metadata).length !== kvCount) {
    throw formatError(path, 'metadata key count does not match the header', { expected: `${kvCount} keys`, found: `${Object.keys(metadata).length} distinct keys` });
  }
  const alignment = Number(parsed.typedMetadata['general.alignment']?.value ?? GGUF_DEFAULT_ALIGNMENT);
  const dataOffset = Number(parsed.tensorDataOffset);
  const tensors: GgufTensorInfo[] = parsed.tensorInfos.map((t) => {
    const known = (Object.keys(GGML_TYPE_ID) as GgmlType[]).find((k) => GGML_TYPE_ID[k] === t.dtype);
    const dims = t.shape.map(Number);
    const info: GgufTensorInfo = {
      name: t.name,
      dims,
      type: known ?? `ggml type ${Number(t.dtype)}`,
      offset: Number(t.offset),
      byteLength: known !== undefined ? ggmlByteSize(known, dims) : undefined,
    };
    if (info.offset % alignment !== 0) throw formatError(path, 'tensor data is not aligned', { field: t.name, expected: `offset multiple of ${alignment}`, found: `${info.offset}` });
    if (dataOffset + info.offset + (info.byteLength ?? 0) > size) {
      throw formatError(path, 'tensor data runs past the end of the file', {
        field: t.name,
        expected: `${dataOffset + info.offset + (info.byteLength ?? 0)} bytes`,
        found: `${size}`,
        hint: 'the file is truncated',
      });
    }
    return info;
  });
  const byName = new Map(tensors.map((t) => [t.name, t]));
  const fd = openSync(path, 'r');
  let open = true;
  const readRaw = (name: string) => {
    const info = byName.get(name);
    if (info === undefined) throw new CliniloraError('E_MISSING', 'no such tensor in the GGUF file', { file: path, field: name });
    if (info.byteLength === undefined) {
      throw new CliniloraError('E_UNSUPPORTED', `cannot read tensor of ${info.type}`, { file: path, field: name, expected: Object.keys(GGML_TYPE_ID).join(', ') });
    }
    if (!open) throw new CliniloraError('E_IO', 'read after close', { file: path, field: name });
    const data = new Uint8Array(info.byteLength);
    let got = 0;
    while (got < data.byteLength) {
      const n = readSync(fd, data, got, data.byteLength - got, dataOffset + info.offset + got);
      if (n === 0) throw formatError(path, 'file ends inside tensor data', { field: name });
      got += n;
    }
    return { info, data };
  };
  return {
    path,
    version: parsed.metadata.version,
    metadata,
    tensors,
    alignment,
    dataOffset,
    get: (key) => metadata[key]?.value,
    readTensorRaw: readRaw,
    readTensor(name) {
      const { info, data } = readRaw(name);
      return dequantize(info.type as GgmlType, data, numel(info.dims));
    },
    close() {
      if (open) closeSync(fd);
      open = false;
    },
  };
}

function typedValue(path: string, key: string, e: { value: MetadataValue; type: GGUFValueType; subType?: GGUFValueType }): GgufValue {
  const type = VALUE_TYPE_NAME[e.type];
  if (type === undefined) throw formatError(path, 'unknown metadata value type', { field: key, found: String(e.type) });
  if (type !== 'array') return { type, value: e.value as GgufScalar };
  const itemType = e.subType !== undefined ? VALUE_TYPE_NAME[e.subType] : undefined;
  if (itemType === undefined || itemType === 'array') {
    throw new CliniloraError('E_UNSUPPORTED', 'nested or untyped metadata arrays are not supported', { file: path, field: key });
  }
  return { type: 'array', itemType, value: e.value as GgufScalar[] };
}

// ---------------------------------------------------------------- writing

export interface GgufTensorSpec {
  name: string;
  /** GGUF order: dims[0] innermost. A PyTorch [out, in] weight is dims [in, out]. */
  dims: number[];
  type: GgmlType;
}

/** Tensor data: bytes already in `type`, or float values to encode (quantize) into it. */
export type GgufTensorData = Uint8Array | Float32Array;

export interface GgufWriteInput {
  /** Ordered key/value pairs. `general.alignment` (u32), if present, sets the alignment. */
  metadata: ReadonlyArray<readonly [string, GgufValue]>;
  tensors: ReadonlyArray<GgufTensorSpec & { data: GgufTensorData }>;
}

/** Grows a list of byte chunks; numbers little endian. */
class Bytes {
  private parts: Uint8Array[] = [];
  length = 0;
  push(b: Uint8Array): void {
    this.parts.push(b);
    this.length += b.byteLength;
  }
  num(kind: GgufScalarType, v: GgufScalar, key: string): void {
    const size = { u8: 1, i8: 1, bool: 1, u16: 2, i16: 2, u32: 4, i32: 4, f32: 4, u64: 8, i64: 8, f64: 8, string: 0 }[kind];
    if (kind === 'string') {
      if (typeof v !== 'string') throw badValue(key, kind, v);
      const s = Buffer.from(v, 'utf8');
      this.num('u64', s.byteLength, key);
      this.push(s);
      return;
    }
    const b = new Uint8Array(size);
    const dv = new DataView(b.buffer);
    if (kind === 'bool') {
      if (typeof v !== 'boolean') throw badValue(key, kind, v);
      b[0] = v ? 1 : 0;
    } else if (kind === 'u64' || kind === 'i64') {
      if (typeof v !== 'bigint' && !(typeof v === 'number' && Number.isSafeInteger(v))) throw badValue(key, kind, v);
      const big = BigInt(v);
      if (kind === 'u64' ? big < 0n || big >= 1n << 64n : big < -(1n << 63n) || big >= 1n << 63n) throw badValue(key, kind, v);
      if (kind === 'u64') dv.setBigUint64(0, big, true);
      else dv.setBigInt64(0, big, true);
    } else if (kind === 'f32' || kind === 'f64') {
      if (typeof v !== 'number') throw badValue(key, kind, v);
      if (kind === 'f32') dv.setFloat32(0, v, true);
      else dv.setFloat64(0, v, true);
    } else {
      const range = { u8: [0, 255], i8: [-128, 127], u16: [0, 65535], i16: [-32768, 32767], u32: [0, 2 ** 32 - 1], i32: [-(2 ** 31), 2 ** 31 - 1] }[kind];
      if (typeof v !== 'number' || !Number.isInteger(v) || v < range[0] || v > range[1]) throw badValue(key, kind, v);
      if (kind === 'u8') dv.setUint8(0, v);
      else if (kind === 'i8') dv.setInt8(0, v);
      else if (kind === 'u16') dv.setUint16(0, v, true);
      else if (kind === 'i16') dv.setInt16(0, v, true);
      else if (kind === 'u32') dv.setUint32(0, v, true);
      else dv.setInt32(0, v, true);
    }
    this.push(b);
  }
  concat(): Uint8Array {
    return Buffer.concat(this.parts, this.length);
  }
}

function badValue(key: string, kind: string, v: unknown): CliniloraError {
  return new CliniloraError('E_ARG', 'metadata value does not fit its type', { field: key, expected: kind, found: typeof v === 'bigint' ? `${v}n` : JSON.stringify(v) });
}

const pad = (n: number, a: number) => Math.ceil(n / a) * a;

/**
 * Writes a GGUF file tensor by tensor: the header (with every offset) is written first, then each
 * `put` writes one tensor at its place, so memory holds one tensor at a time and tensors may arrive
 * in any order. `finish` checks that all arrived, fsyncs and renames into place (atomic).
 */
export class GgufStreamWriter {
  readonly path: string;
  private readonly tmp: string;
  private fd: number;
  private readonly specs = new Map<string, GgufTensorSpec & { offset: number; byteLength: number }>();
  private readonly written = new Set<string>();
  private readonly dataStart: number;

  constructor(path: string, metadata: GgufWriteInput['metadata'], tensors: ReadonlyArray<GgufTensorSpec>) {
    this.path = path;
    const align = metadata.find(([k]) => k === 'general.alignment')?.[1];
    const alignment = align === undefined ? GGUF_DEFAULT_ALIGNMENT : Number(align.value);
    if (align !== undefined && (align.type !== 'u32' || !(alignment > 0) || alignment % 8 !== 0)) {
      throw new CliniloraError('E_ARG', 'general.alignment must be a u32 multiple of 8', { field: 'general.alignment', found: JSON.stringify(align) });
    }
    const h = new Bytes();
    h.push(Buffer.from('GGUF', 'ascii'));
    h.num('u32', 3, 'version');
    h.num('u64', tensors.length, 'tensor_count');
    h.num('u64', metadata.length, 'kv_count');
    const keys = new Set<string>();
    for (const [key, v] of metadata) {
      if (keys.has(key)) throw new CliniloraError('E_ARG', 'duplicate metadata key', { field: key });
      keys.add(key);
      h.num('string', key, key);
      h.num('u32', VALUE_TYPE_ID[v.type], key);
      if (v.type === 'array') {
        if (!Array.isArray(v.value) || VALUE_TYPE_ID[v.itemType] === undefined) throw badValue(key, `array of ${v.itemType}`, v.value);
        h.num('u32', VALUE_TYPE_ID[v.itemType], key);
        h.num('u64', v.value.length, key);
        for (const item of v.value) h.num(v.itemType, item, key);
      } else {
        h.num(v.type, v.value, key);
      }
    }
    let offset = 0;
    for (const t of tensors) {
      if (this.specs.has(t.name)) throw new CliniloraError('E_ARG', 'duplicate tensor name', { field: t.name });
      const [blk] = GGML_BLOCK[t.type] ?? [];
      if (blk === undefined) throw new CliniloraError('E_ARG', 'unsupported ggml type', { field: t.name, expected: Object.keys(GGML_BLOCK).join(', '), found: String(t.type) });
      if (t.dims.length < 1 || t.dims.length > 4 || !t.dims.every((d) => Number.isSafeInteger(d) && d > 0) || t.dims[0]! % blk !== 0) {
        throw new CliniloraError('E_SHAPE', `bad dims for ${t.type}`, { field: t.name, expected: `1–4 positive dims, dims[0] a multiple of ${blk}`, found: `[${t.dims.join(', ')}]` });
      }
      const byteLength = ggmlByteSize(t.type, t.dims);
      this.specs.set(t.name, { ...t, offset, byteLength });
      h.num('string', t.name, t.name);
      h.num('u32', t.dims.length, t.name);
      for (const d of t.dims) h.num('u64', d, t.name);
      h.num('u32', GGML_TYPE_ID[t.type], t.name);
      h.num('u64', offset, t.name);
      offset = pad(offset + byteLength, alignment);
    }
    this.dataStart = pad(h.length, alignment);
    mkdirSync(dirname(path), { recursive: true });
    this.tmp = tempPathFor(path);
    this.fd = openSync(this.tmp, 'w');
    try {
      ftruncateSync(this.fd, this.dataStart + offset); // padding reads as zeros
      this.writeAt(h.concat(), 0);
    } catch (e) {
      this.abort();
      throw e;
    }
  }

  private writeAt(b: Uint8Array, pos: number): void {
    let off = 0;
    while (off < b.byteLength) off += writeSync(this.fd, b, off, b.byteLength - off, pos + off);
  }

  /** Writes one tensor: bytes already in its type, or float values (encoded/quantized here). */
  put(name: string, data: GgufTensorData): void {
    const spec = this.specs.get(name);
    if (spec === undefined) throw new CliniloraError('E_ARG', 'tensor not declared in the GGUF header', { file: this.path, field: name });
    if (this.written.has(name)) throw new CliniloraError('E_ARG', 'tensor written twice', { file: this.path, field: name });
    const n = numel(spec.dims);
    let bytes: Uint8Array;
    if (data instanceof Float32Array) {
      if (data.length !== n) throw new CliniloraError('E_SHAPE', 'value count does not match dims', { file: this.path, field: name, expected: `${n}`, found: `${data.length}` });
      bytes = encodeGgml(spec.type, data);
    } else {
      bytes = data;
    }
    if (bytes.byteLength !== spec.byteLength) {
      throw new CliniloraError('E_SHAPE', `tensor data size does not match ${spec.type} [${spec.dims.join(', ')}]`, { file: this.path, field: name, expected: `${spec.byteLength} bytes`, found: `${bytes.byteLength}` });
    }
    this.writeAt(bytes, this.dataStart + spec.offset);
    this.written.add(name);
  }

  /** Names declared but not yet written. */
  missing(): string[] {
    return [...this.specs.keys()].filter((n) => !this.written.has(n));
  }

  finish(): void {
    const missing = this.missing();
    if (missing.length > 0) {
      this.abort();
      throw new CliniloraError('E_MISSING', `${missing.length} tensor(s) never written: ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ', …' : ''}`, { file: this.path });
    }
    fsyncSync(this.fd);
    closeSync(this.fd);
    this.fd = -1;
    renameSync(this.tmp, this.path);
  }

  /** Drops the temporary file. */
  abort(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
    rmSync(this.tmp, { force: true });
  }
}

/** Writes a whole GGUF file from in-memory tensors (atomic). */
export function writeGguf(path: string, input: GgufWriteInput): void {
  const w = new GgufStreamWriter(path, input.metadata, input.tensors);
  try {
    for (const t of input.tensors) w.put(t.name, t.data);
  } catch (e) {
    w.abort();
    throw e;
  }
  w.finish();
}

/** A RawTensor (PyTorch shape, row-major) as GGUF float values and dims (reversed). */
export function rawToGgufFloats(raw: RawTensor): { dims: number[]; values: Float32Array } {
  return { dims: [...raw.shape].reverse(), values: toFloat32(raw) };
}

