/**
 * Hugging Face checkpoint directories: `config.json` plus either one `model.safetensors` or shards
 * `model-0000i-of-0000N.safetensors` listed in `model.safetensors.index.json` ({"metadata":
 * {"total_size"}, "weight_map": {tensor: shard}}), the layout `save_pretrained` writes.
 */
import { existsSync, readFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { CliniloraError } from '../errors.ts';
import { writeDirAtomic, writeFileAtomic } from '../util/atomic.ts';
import { openSafetensors, writeSafetensors, type SafetensorsFile, type SafetensorsInfo, type TensorSource } from './safetensors.ts';
import { byteSize, type RawTensor } from './tensor.ts';

export const CONFIG_FILE = 'config.json';
export const SINGLE_FILE = 'model.safetensors';
export const INDEX_FILE = 'model.safetensors.index.json';

export interface CheckpointTensorInfo extends SafetensorsInfo {
  /** The file (inside the checkpoint directory) that holds the tensor. */
  file: string;
}

export interface HfCheckpoint {
  readonly dir: string;
  /** Parsed config.json, unknown keys kept. */
  readonly config: Record<string, unknown>;
  names(): string[];
  has(name: string): boolean;
  info(name: string): CheckpointTensorInfo;
  read(name: string): RawTensor;
  close(): void;
}

/** Reads and parses a JSON file; a missing file is E_MISSING, bad JSON E_FORMAT, both naming the file. */
export function readJsonFile(path: string, hint?: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new CliniloraError('E_MISSING', 'file not found or unreadable', { file: path, found: (e as Error).message, ...(hint !== undefined ? { hint } : {}) }, { cause: e });
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new CliniloraError('E_FORMAT', `not valid JSON: ${(e as Error).message}`, { file: path }, { cause: e });
  }
}

function readJsonObject(path: string, hint?: string): Record<string, unknown> {
  const v = readJsonFile(path, hint);
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw new CliniloraError('E_FORMAT', 'expected a JSON object', { file: path, found: Array.isArray(v) ? 'array' : typeof v });
  }
  return v as Record<string, unknown>;
}

/** Opens a checkpoint directory: parses config.json and every shard header; reads tensors on demand. */
export function openCheckpoint(dir: string): HfCheckpoint {
  const config = readJsonObject(join(dir, CONFIG_FILE), 'a Hugging Face checkpoint directory needs config.json');
  const files = new Map<string, SafetensorsFile>();
  const where = new Map<string, string>(); // tensor → shard file
  const order: string[] = [];
  try {
    const indexPath = join(dir, INDEX_FILE);
    if (existsSync(indexPath)) {
      const index = readJsonObject(indexPath);
      const map = index['weight_map'];
      if (typeof map !== 'object' || map === null || Array.isArray(map)) {
        throw new CliniloraError('E_FORMAT', "index has no 'weight_map' object", { file: indexPath, field: 'weight_map' });
      }
      for (const [name, shard] of Object.entries(map as Record<string, unknown>)) {
        if (typeof shard !== 'string') throw new CliniloraError('E_FORMAT', 'weight_map values must be file names', { file: indexPath, field: name, found: JSON.stringify(shard) });
        if (!files.has(shard)) {
          const shardPath = join(dir, shard);
          if (!existsSync(shardPath)) {
            throw new CliniloraError('E_MISSING', `shard '${shard}' listed in the index is missing`, {
              file: shardPath,
              field: name,
              hint: `tensor '${name}' (and maybe others) lives there; download or copy the complete checkpoint`,
            });
          }
          files.set(shard, openSafetensors(shardPath));
        }
        if (!files.get(shard)!.has(name)) {
          throw new CliniloraError('E_FORMAT', `tensor listed in ${INDEX_FILE} is not in its shard`, { file: join(dir, shard), field: name, hint: 'the index and the shards disagree; re-save the checkpoint' });
        }
        where.set(name, shard);
        order.push(name);
      }
    } else {
      const single = join(dir, SINGLE_FILE);
      if (!existsSync(single)) {
        const bin = existsSync(join(dir, 'pytorch_model.bin')) || existsSync(join(dir, 'pytorch_model.bin.index.json'));
        throw new CliniloraError('E_MISSING', `no ${SINGLE_FILE} or ${INDEX_FILE} in the checkpoint`, {
          file: dir,
          hint: bin ? 'only safetensors checkpoints are supported; convert pytorch_model.bin with transformers (save_pretrained(safe_serialization=True))' : 'is this a Hugging Face model directory?',
        });
      }
      const f = openSafetensors(single);
      files.set(SINGLE_FILE, f);
      for (const name of f.names()) {
        where.set(name, SINGLE_FILE);
        order.push(name);
      }
    }
  } catch (e) {
    for (const f of files.values()) f.close();
    throw e;
  }
  const fileOf = (name: string): [string, SafetensorsFile] => {
    const shard = where.get(name);
    if (shard === undefined) {
      throw new CliniloraError('E_MISSING', 'no such tensor in the checkpoint', { file: dir, field: name, hint: `it has ${order.length} tensors, e.g. ${order.slice(0, 3).join(', ')}` });
    }
    return [shard, files.get(shard)!];
  };
  return {
    dir,
    config,
    names: () => [...order],
    has: (name) => where.has(name),
    info(name) {
      const [shard, f] = fileOf(name);
      return { ...f.info(name), file: shard };
    },
    read: (name) => fileOf(name)[1].read(name),
    close() {
      for (const f of files.values()) f.close();
    },
  };
}

export interface WriteCheckpointOptions {
  /** Start a new shard before a tensor that would push the current one past this many bytes. Default: one file. */
  maxShardBytes?: number;
  /** safetensors `__metadata__` of every file; default {"format": "pt"} as transformers writes. */
  metadata?: Record<string, string>;
}

export interface WrittenCheckpoint {
  files: string[];
  totalBytes: number;
}

/** Stable JSON for config files: keys sorted recursively, 2-space indent, trailing newline (as transformers). */
export function stableJson(value: unknown): string {
  const sortKeys = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(sortKeys);
    if (typeof v === 'object' && v !== null) {
      return Object.fromEntries(Object.keys(v).sort().map((k) => [k, sortKeys((v as Record<string, unknown>)[k])]));
    }
    return v;
  };
  return JSON.stringify(sortKeys(value), null, 2) + '\n';
}

function shardName(i: number, n: number): string {
  const pad = (k: number) => String(k).padStart(5, '0');
  return `model-${pad(i)}-of-${pad(n)}.safetensors`;
}

/**
 * Writes a checkpoint directory atomically (it replaces `dir` only when complete). Tensors are
 * consumed in order and buffered one shard at a time, so with `LazyTensor` inputs — or a generator
 * that makes each tensor on demand — memory stays at about one shard.
 */
export function writeCheckpoint(
  dir: string,
  config: object,
  tensors: Iterable<readonly [string, TensorSource]>,
  options: WriteCheckpointOptions = {},
): WrittenCheckpoint {
  const maxShard = options.maxShardBytes ?? Infinity;
  if (!(maxShard > 0)) throw new CliniloraError('E_ARG', 'maxShardBytes must be positive', { field: 'maxShardBytes', found: String(maxShard) });
  const metadata = options.metadata ?? { format: 'pt' };
  const result: WrittenCheckpoint = { files: [], totalBytes: 0 };
  writeDirAtomic(dir, (tmp) => {
    writeFileAtomic(join(tmp, CONFIG_FILE), stableJson(config));
    const shards: Array<{ temp: string; names: string[] }> = [];
    const seen = new Set<string>();
    let current: Array<readonly [string, TensorSource]> = [];
    let currentBytes = 0;
    const flush = () => {
      const temp = `shard-${shards.length + 1}.partial.safetensors`;
      writeSafetensors(join(tmp, temp), current, metadata);
      shards.push({ temp, names: current.map(([n]) => n) });
      current = [];
      currentBytes = 0;
    };
    for (const [name, t] of tensors) {
      if (seen.has(name)) throw new CliniloraError('E_ARG', 'duplicate tensor name', { file: dir, field: name });
      seen.add(name);
      const size = byteSize(t.dtype, t.shape);
      if (current.length > 0 && currentBytes + size > maxShard) flush();
      current.push([name, t]);
      currentBytes += size;
      result.totalBytes += size;
    }
    if (current.length > 0 || shards.length === 0) flush();
    if (shards.length === 1) {
      renameSync(join(tmp, shards[0]!.temp), join(tmp, SINGLE_FILE));
      result.files = [CONFIG_FILE, SINGLE_FILE];
      return;
    }
    const weightMap: Record<string, string> = {};
    shards.forEach((s, i) => {
      const final = shardName(i + 1, shards.length);
      renameSync(join(tmp, s.temp), join(tmp, final));
      for (const n of s.names) weightMap[n] = final;
      result.files.push(final);
    });
    writeFileAtomic(join(tmp, INDEX_FILE), stableJson({ metadata: { total_size: result.totalBytes }, weight_map: weightMap }));
    result.files.unshift(CONFIG_FILE, INDEX_FILE);
  });
  return result;
}
