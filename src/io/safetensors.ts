/**
 * safetensors, as Hugging Face's library reads and writes it: an 8-byte little-endian u64 header
 * length N, N bytes of JSON ({"__metadata__": {str: str}, name: {dtype, shape, data_offsets}}, padded
 * with spaces to a multiple of 8), then the tensor bytes; data_offsets are relative to the end of
 * the header. Reading parses only the header and reads one tensor's bytes on demand, so a 7 GB
 * checkpoint never has to fit in memory.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { CliniloraError } from '../errors.ts';
import { writeFileAtomic } from '../util/atomic.ts';
import { DTYPES, byteSize, isDType, type DType, type RawTensor } from './tensor.ts';

export interface SafetensorsInfo {
  dtype: DType;
  shape: number[];
  /** [start, end) in bytes, relative to the start of the data section. */
  dataOffsets: [number, number];
}

export interface SafetensorsFile {
  readonly path: string;
  readonly metadata: Record<string, string>;
  /** Tensor names in file order. */
  names(): string[];
  has(name: string): boolean;
  info(name: string): SafetensorsInfo;
  /** Reads just this tensor's bytes from disk. */
  read(name: string): RawTensor;
  close(): void;
}

/** A tensor whose bytes are produced only when the writer reaches it (keeps memory to one tensor). */
export interface LazyTensor {
  dtype: DType;
  shape: number[];
  load(): Uint8Array;
}

export type TensorSource = RawTensor | LazyTensor;

/** The Python library refuses headers over 100 MB; so do we (a corrupt length would otherwise allocate GBs). */
const MAX_HEADER_BYTES = 100_000_000;

function formatError(path: string, message: string, extra: { field?: string; expected?: string; found?: string; hint?: string } = {}): CliniloraError {
  return new CliniloraError('E_FORMAT', message, { file: path, ...extra });
}

function readExactly(fd: number, path: string, length: number, position: number, what: string): Buffer {
  const buf = Buffer.alloc(length);
  let got = 0;
  while (got < length) {
    const n = readSync(fd, buf, got, length - got, position + got);
    if (n === 0) throw formatError(path, `file ends inside ${what}`, { expected: `${length} bytes at offset ${position}`, found: `${got}` });
    got += n;
  }
  return buf;
}

function isNonNegInt(x: unknown): x is number {
  return typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
}

/** Parses and validates the header; opens the file for reading tensors. */
export function openSafetensors(path: string): SafetensorsFile {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    throw new CliniloraError('E_MISSING', 'cannot open safetensors file', { file: path, found: (e as Error).message }, { cause: e });
  }
  try {
    return parse(fd, path);
  } catch (e) {
    closeSync(fd);
    throw e;
  }
}

function parse(fd: number, path: string): SafetensorsFile {
  const size = fstatSync(fd).size;
  if (size < 8) throw formatError(path, 'file too short for a safetensors header length', { expected: 'at least 8 bytes', found: `${size} bytes` });
  const headerLen = Number(readExactly(fd, path, 8, 0, 'the header length').readBigUInt64LE(0));
  if (headerLen > MAX_HEADER_BYTES) {
    throw formatError(path, 'header length is implausibly large', { expected: `at most ${MAX_HEADER_BYTES} bytes`, found: `${headerLen}`, hint: 'the file is not safetensors or is corrupt' });
  }
  if (8 + headerLen > size) {
    throw formatError(path, 'header length runs past the end of the file', { expected: `at most ${size - 8} bytes`, found: `${headerLen}`, hint: 'the file is truncated or not safetensors' });
  }
  const text = readExactly(fd, path, headerLen, 8, 'the header').toString('utf8');
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (e) {
    throw formatError(path, `header is not valid JSON: ${(e as Error).message}`, { hint: 'the file is not safetensors or is corrupt' });
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) {
    throw formatError(path, 'header is not a JSON object', { found: Array.isArray(header) ? 'array' : typeof header });
  }
  const dataStart = 8 + headerLen;
  const dataLen = size - dataStart;
  const metadata: Record<string, string> = {};
  const infos = new Map<string, SafetensorsInfo>();
  for (const [name, entry] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) throw formatError(path, '__metadata__ must be an object of strings', { field: name });
      for (const [k, v] of Object.entries(entry)) {
        if (typeof v !== 'string') throw formatError(path, '__metadata__ values must be strings', { field: `__metadata__.${k}`, found: typeof v });
        metadata[k] = v;
      }
      continue;
    }
    infos.set(name, parseEntry(path, name, entry));
  }
  // Offsets must not overlap and must lie in the data section; checked in start order.
  const byStart = [...infos.entries()].sort((a, b) => a[1].dataOffsets[0] - b[1].dataOffsets[0]);
  let prevEnd = 0;
  let prevName = '';
  for (const [name, info] of byStart) {
    const [start, end] = info.dataOffsets;
    if (start < prevEnd) {
      throw formatError(path, `tensor data overlaps that of '${prevName}'`, { field: name, expected: `start ≥ ${prevEnd}`, found: `data_offsets [${start}, ${end}]` });
    }
    if (end > dataLen) {
      throw formatError(path, 'tensor data runs past the end of the file', {
        field: name,
        expected: `end ≤ ${dataLen} (data section size)`,
        found: `data_offsets [${start}, ${end}]`,
        hint: 'the file is truncated',
      });
    }
    if (end > start) {
      prevEnd = end;
      prevName = name;
    }
  }
  const order = [...infos.keys()];
  let open = true;
  const get = (name: string): SafetensorsInfo => {
    const info = infos.get(name);
    if (info === undefined) {
      throw new CliniloraError('E_MISSING', 'no such tensor in the file', { file: path, field: name, hint: `it has ${infos.size} tensors, e.g. ${order.slice(0, 3).join(', ') || '(none)'}` });
    }
    return info;
  };
  return {
    path,
    metadata,
    names: () => [...order],
    has: (name) => infos.has(name),
    info: (name) => {
      const i = get(name);
      return { dtype: i.dtype, shape: [...i.shape], dataOffsets: [i.dataOffsets[0], i.dataOffsets[1]] };
    },
    read(name) {
      if (!open) throw new CliniloraError('E_IO', 'read after close', { file: path, field: name });
      const i = get(name);
      const [start, end] = i.dataOffsets;
      const buf = readExactly(fd, path, end - start, dataStart + start, `tensor '${name}'`);
      return { dtype: i.dtype, shape: [...i.shape], data: new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength) };
    },
    close() {
      if (open) closeSync(fd);
      open = false;
    },
  };
}

function parseEntry(path: string, name: string, entry: unknown): SafetensorsInfo {
  if (typeof entry !== 'object' || entry === null) throw formatError(path, 'tensor entry must be an object', { field: name });
  const { dtype, shape, data_offsets: offsets } = entry as Record<string, unknown>;
  if (!isDType(dtype)) {
    throw new CliniloraError('E_DTYPE', 'unsupported tensor dtype', { file: path, field: name, expected: `one of ${DTYPES.join(', ')}`, found: JSON.stringify(dtype) });
  }
  if (!Array.isArray(shape) || !shape.every(isNonNegInt)) {
    throw formatError(path, 'shape must be an array of non-negative integers', { field: name, found: JSON.stringify(shape) });
  }
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isNonNegInt) || offsets[1] < offsets[0]) {
    throw formatError(path, 'data_offsets must be [start, end] with 0 ≤ start ≤ end', { field: name, found: JSON.stringify(offsets) });
  }
  const want = byteSize(dtype, shape);
  const have = offsets[1] - offsets[0];
  if (have !== want) {
    throw formatError(path, 'data_offsets do not match shape × dtype size', {
      field: name,
      expected: `${want} bytes (${dtype} [${shape.join(', ')}])`,
      found: `${have} bytes (data_offsets [${offsets[0]}, ${offsets[1]}])`,
    });
  }
  return { dtype, shape: [...shape], dataOffsets: [offsets[0], offsets[1]] };
}

function isLazy(t: TensorSource): t is LazyTensor {
  return typeof (t as LazyTensor).load === 'function';
}

/** The bytes of a tensor source, checked against its shape and dtype. */
export function sourceBytes(name: string, t: TensorSource): Uint8Array {
  const data = isLazy(t) ? t.load() : t.data;
  const want = byteSize(t.dtype, t.shape);
  if (data.byteLength !== want) {
    throw new CliniloraError('E_SHAPE', 'tensor data size does not match its shape', {
      field: name,
      expected: `${want} bytes (${t.dtype} [${t.shape.join(', ')}])`,
      found: `${data.byteLength} bytes`,
    });
  }
  return data;
}

/**
 * The header bytes (length prefix included) for tensors in the given order: JSON padded with
 * spaces so the data starts at a multiple of 8, as the Python library does.
 */
export function safetensorsHeader(entries: ReadonlyArray<readonly [string, { dtype: DType; shape: number[] }]>, metadata?: Record<string, string>): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata !== undefined && Object.keys(metadata).length > 0) header['__metadata__'] = metadata;
  let offset = 0;
  for (const [name, t] of entries) {
    if (name === '__metadata__') throw new CliniloraError('E_ARG', "'__metadata__' is reserved and cannot name a tensor", { field: name });
    if (!isDType(t.dtype)) throw new CliniloraError('E_DTYPE', 'unsupported dtype', { field: name, expected: DTYPES.join(', '), found: String(t.dtype) });
    const size = byteSize(t.dtype, t.shape);
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + size] };
    offset += size;
  }
  let json = Buffer.from(JSON.stringify(header), 'utf8');
  const pad = (8 - (json.byteLength % 8)) % 8;
  if (pad > 0) json = Buffer.concat([json, Buffer.alloc(pad, 0x20)]);
  const out = new Uint8Array(8 + json.byteLength);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.byteLength), true);
  out.set(json, 8);
  return out;
}

/**
 * Writes a safetensors file atomically. Tensors are sorted by name; each one's bytes are produced
 * (for a `LazyTensor`, loaded) only when it is written, so lazy inputs keep memory to one tensor.
 */
export function writeSafetensors(
  path: string,
  tensors: Iterable<readonly [string, TensorSource]> | ReadonlyMap<string, TensorSource>,
  metadata?: Record<string, string>,
): void {
  const entries: Array<readonly [string, TensorSource]> = [];
  const seen = new Set<string>();
  for (const [name, t] of tensors) {
    if (seen.has(name)) throw new CliniloraError('E_ARG', 'duplicate tensor name', { file: path, field: name });
    seen.add(name);
    entries.push([name, t]);
  }
  entries.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const header = safetensorsHeader(entries, metadata);
  function* chunks(): Generator<Uint8Array> {
    yield header;
    for (const [name, t] of entries) yield sourceBytes(name, t);
  }
  writeFileAtomic(path, chunks());
}
