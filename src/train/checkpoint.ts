/**
 * Training checkpoints: one directory per save, written atomically (src/util/atomic.ts), holding
 *   trainable.safetensors   the trainable variables by stable name (F32)
 *   optimizer.safetensors   AdamW step, m, v
 *   best.safetensors        the best weights so far (when early stopping keeps them)
 *   state.json              step, config hash, data position (epoch, batch index, the epoch's batch
 *                           order), every random stream's state, early-stopping counters, history
 * `readCheckpoint` checks the format, version and config hash before anything is changed.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tf } from '../backend/tf.ts';
import { CliniloraError } from '../errors.ts';
import { openSafetensors, writeSafetensors } from '../io/safetensors.ts';
import { rawFromTyped, toFloat32 } from '../io/tensor.ts';
import { writeDirAtomic } from '../util/atomic.ts';
import type { RngState } from '../util/random.ts';
import type { AdamW, NamedVariable } from './optimizer.ts';

export const CHECKPOINT_FORMAT = 'clinilora-train-checkpoint';
export const CHECKPOINT_VERSION = 1;

export interface TrainState {
  format: typeof CHECKPOINT_FORMAT;
  version: number;
  /** Optimizer updates done. */
  step: number;
  configHash: string;
  /** Data position: the epoch being read, the next batch's index in it, and its batch order. */
  epoch: number;
  batchIndex: number;
  epochPlan: number[][] | null;
  /** name → xoshiro state: 'shuffle', 'dropout', 'lora:<module>' … */
  rng: Record<string, RngState>;
  early: { bestValLoss: number | null; bestStep: number | null; badEvals: number };
  tokensSeen: number;
  elapsedMs: number;
  /** Loss of every step so far (index = step − 1). */
  losses: number[];
}

/** sha256 of a value's canonical JSON (object keys sorted), 16 hex digits. */
export function configHash(value: unknown): string {
  const canon = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(canon);
    if (v !== null && typeof v === 'object') {
      const o = v as Record<string, unknown>;
      return Object.fromEntries(Object.keys(o).sort().filter((k) => o[k] !== undefined).map((k) => [k, canon(o[k])]));
    }
    return v;
  };
  return createHash('sha256').update(JSON.stringify(canon(value))).digest('hex').slice(0, 16);
}

export function checkpointName(step: number): string {
  return `step-${String(step).padStart(7, '0')}`;
}

/** Saves variables (F32) by name. */
export function saveVariables(path: string, vars: readonly NamedVariable[] | ReadonlyArray<readonly [string, Float32Array, number[]]>): void {
  writeSafetensors(path, vars.map((e) => {
    const data = e[1] instanceof Float32Array ? e[1] : new Float32Array((e[1] as tf.Variable).dataSync());
    const shape = e[1] instanceof Float32Array ? (e as readonly [string, Float32Array, number[]])[2] : (e[1] as tf.Variable).shape;
    return [e[0], rawFromTyped(data, shape)] as const;
  }));
}

/** Reads variables saved by saveVariables, checking every name and shape (one error listing all). */
export function readVariables(path: string, vars: readonly NamedVariable[]): Float32Array[] {
  const f = openSafetensors(path);
  try {
    const problems: string[] = [];
    const out: Float32Array[] = [];
    for (const [name, v] of vars) {
      if (!f.has(name)) { problems.push(`${name}: missing`); continue; }
      const info = f.info(name);
      if (info.dtype !== 'F32' || info.shape.join(',') !== v.shape.join(',')) {
        problems.push(`${name}: expected F32 [${v.shape.join(', ')}], found ${info.dtype} [${info.shape.join(', ')}]`);
        continue;
      }
      out.push(toFloat32(f.read(name)));
    }
    const known = new Set(vars.map(([n]) => n));
    for (const n of f.names()) if (!known.has(n)) problems.push(`${n}: unexpected (no such trainable variable)`);
    if (problems.length > 0) {
      throw new CliniloraError('E_SHAPE', `checkpoint weights do not fit the trainable variables:\n  ${problems.join('\n  ')}`, { file: path, hint: 'the checkpoint was written for another model or adapter' });
    }
    return out;
  } finally {
    f.close();
  }
}

export interface WriteCheckpointParts {
  state: TrainState;
  variables: readonly NamedVariable[];
  optimizer: AdamW;
  best?: ReadonlyArray<readonly [string, Float32Array, number[]]>;
}

/** Writes a checkpoint directory atomically (a crash leaves the old one or the new one). */
export function writeCheckpoint(dir: string, parts: WriteCheckpointParts): void {
  writeDirAtomic(dir, (tmp) => {
    saveVariables(join(tmp, 'trainable.safetensors'), parts.variables);
    parts.optimizer.save(join(tmp, 'optimizer.safetensors'));
    if (parts.best !== undefined) saveVariables(join(tmp, 'best.safetensors'), parts.best);
    writeFileSync(join(tmp, 'state.json'), JSON.stringify(parts.state) + '\n');
  });
}

/** Reads and validates state.json; a config-hash mismatch is an error naming both hashes. */
export function readCheckpointState(dir: string, expectedHash?: string): TrainState {
  const path = join(dir, 'state.json');
  if (!existsSync(path)) {
    throw new CliniloraError('E_MISSING', 'not a training checkpoint (no state.json)', { file: dir, hint: 'pass a directory written by train(), e.g. <checkpointDir>/step-0000100' });
  }
  let s: TrainState;
  try {
    s = JSON.parse(readFileSync(path, 'utf8')) as TrainState;
  } catch (e) {
    throw new CliniloraError('E_FORMAT', 'state.json is not valid JSON', { file: path, found: (e as Error).message }, { cause: e });
  }
  if (s.format !== CHECKPOINT_FORMAT || s.version !== CHECKPOINT_VERSION) {
    throw new CliniloraError('E_FORMAT', 'unknown checkpoint format', { file: path, field: 'format', expected: `${CHECKPOINT_FORMAT} v${CHECKPOINT_VERSION}`, found: `${String(s.format)} v${String(s.version)}` });
  }
  if (expectedHash !== undefined && s.configHash !== expectedHash) {
    throw new CliniloraError('E_CONFIG', 'the checkpoint was written by a run with another config', {
      file: path, field: 'configHash', expected: expectedHash, found: s.configHash,
      hint: 'resume with the same config (and data) as the run that wrote it, or start a new run',
    });
  }
  return s;
}

/** The newest `step-*` checkpoint under `root`, or undefined. */
export function latestCheckpoint(root: string): string | undefined {
  if (!existsSync(root)) return undefined;
  const names = readdirSync(root).filter((n) => /^step-\d+$/.test(n) && existsSync(join(root, n, 'state.json'))).sort();
  return names.length > 0 ? join(root, names[names.length - 1]!) : undefined;
}

/** Removes all but the newest `keep` step-* checkpoints under `root`. */
export function pruneCheckpoints(root: string, keep: number): void {
  const names = readdirSync(root).filter((n) => /^step-\d+$/.test(n)).sort();
  for (const n of names.slice(0, Math.max(0, names.length - keep))) rmSync(join(root, n), { recursive: true, force: true });
}
