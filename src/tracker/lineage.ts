/**
 * Lineage: the runs a new run derives from, found without the caller passing them by hand.
 *   - Context: `withRunParents(parents, fn)` links every run opened inside `fn` (across awaits, through
 *     AsyncLocalStorage): `reproduce` wraps the re-run's training in it.
 *   - Environment: CLINILORA_PARENTS=`role:id,role:id` links every run a process opens (a notebook
 *     runner sets it for the kernel it starts; a reproduce checkout sets it for its child).
 *   - Base model: the run whose artifacts hold the base's weight file (same path, size and sha256),
 *     e.g. the pretraining run that wrote models/phi3-nano.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { createHash } from 'node:crypto';
import { closeSync, existsSync, openSync, readdirSync, readSync, realpathSync, statSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { packageRoot } from '../data/index.ts';
import { CliniloraError } from '../errors.ts';
import type { RunRecord } from './schema.ts';
import { listRuns } from './store.ts';

export interface Parent {
  id: string;
  role: string;
}

const context = new AsyncLocalStorage<readonly Parent[]>();

/** Runs `fn` with `parents` added to the lineage of every run opened inside it (nesting adds up). */
export function withRunParents<T>(parents: readonly Parent[], fn: () => T): T {
  return context.run([...(context.getStore() ?? []), ...parents], fn);
}

const PARENT_ITEM = /^([\w.-]+):([A-Za-z0-9_-]+)$/;

/** CLINILORA_PARENTS parsed: `role:id` items separated by commas; a malformed item is an error naming it. */
export function envParents(value = process.env.CLINILORA_PARENTS): Parent[] {
  if (value === undefined || value.trim() === '') return [];
  return value.split(',').map((item) => {
    const m = PARENT_ITEM.exec(item.trim());
    if (m === null) throw new CliniloraError('E_ARG', 'bad run parent in CLINILORA_PARENTS', { field: 'CLINILORA_PARENTS', expected: 'role:run-id[,role:run-id...]', found: JSON.stringify(item) });
    return { role: m[1]!, id: m[2]! };
  });
}

/** The parents of a run being opened: the caller's, then the context's, then the environment's (no duplicates). */
export function lineageFor(own: readonly Parent[] = []): Parent[] {
  const out: Parent[] = [];
  for (const p of [...own, ...(context.getStore() ?? []), ...envParents()]) {
    if (!out.some((q) => q.id === p.id && q.role === p.role)) out.push({ id: p.id, role: p.role });
  }
  return out;
}

/** sha256 of a file, synchronously (1 MiB reads). */
function hashFileSync(path: string): string {
  const h = createHash('sha256');
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.allocUnsafe(1 << 20);
    for (let n; (n = readSync(fd, buf, 0, buf.length, null)) > 0; ) h.update(buf.subarray(0, n));
  } finally {
    closeSync(fd);
  }
  return h.digest('hex');
}

/** A base spec's directory as the pipeline resolves it (absolute, package root, cwd), or null (a preset). */
export function baseDirOf(nameOrPath: string): string | null {
  if (nameOrPath.startsWith('preset:')) return null;
  const candidates = isAbsolute(nameOrPath) ? [nameOrPath] : [join(packageRoot(), nameOrPath), resolve(nameOrPath)];
  return candidates.find((c) => existsSync(join(c, 'config.json'))) ?? null;
}

/**
 * The run that produced the base model in `dir`: a run under one of `roots` (homes holding
 * experiments/runs) with an artifact at the same real path as one of the directory's weight files,
 * of the same size and sha256. Null when none did (a downloaded checkpoint).
 */
export function baseModelProducer(dir: string, roots: readonly string[]): RunRecord | null {
  const weights = readdirSync(dir)
    .filter((f) => f.endsWith('.safetensors'))
    .map((f) => join(dir, f));
  if (weights.length === 0) return null;
  const real = new Map(weights.map((w) => [realpathSync(w), statSync(w).size]));
  const hashes = new Map<string, string>();
  for (const root of [...new Set(roots.map((r) => resolve(r)))]) {
    for (const run of listRuns({ root }).runs) {
      for (const a of run.artifacts) {
        const abs = isAbsolute(a.path) ? a.path : join(root, a.path);
        if (!existsSync(abs)) continue;
        const path = realpathSync(abs);
        if (real.get(path) !== a.bytes) continue;
        if (!hashes.has(path)) hashes.set(path, hashFileSync(path));
        if (hashes.get(path) === a.sha256) return run;
      }
    }
  }
  return null;
}
