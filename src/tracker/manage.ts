/**
 * Deleting runs and tagging them (`runs rm`, `runs tag`): the two verbs that change records after
 * the fact. Both resolve every id first, so a typo changes nothing.
 */
import { renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { CliniloraError } from '../errors.ts';
import { findRun, resolveRunId, same } from './compare.ts';
import { effectiveStatus, type RunRecord } from './schema.ts';
import { acquireLock, readRun, RUN_FILE, RunFileAdapter, runsDir } from './store.ts';

/**
 * Deletes runs (their whole directory). A run that is still running (fresh heartbeat) is refused
 * unless `force`. Every reference is resolved before anything is deleted: one bad id deletes nothing.
 * The directory is first renamed to a hidden name (listings skip it), then removed.
 */
export function removeRuns(refs: readonly string[], opts: { root?: string; force?: boolean; now?: number } = {}): string[] {
  const o = opts.root !== undefined ? { root: opts.root } : {};
  const now = opts.now ?? Date.now();
  const records = refs.map((ref): Pick<RunRecord, 'id' | 'status' | 'times'> => {
    if (ref.includes('/') || ref.includes('\\') || ref.endsWith('.json')) return findRun(ref, o);
    const id = resolveRunId(ref, o);
    try {
      return readRun(id, o);
    } catch (e) {
      if (!(e instanceof CliniloraError) || e.code !== 'E_FORMAT') throw e;
      // An unreadable record can still be deleted, but only on purpose: whether it runs is unknown.
      if (opts.force === true) return { id, status: 'failed', times: { started: '', heartbeat: '', ended: null, resumed: [] } };
      throw new CliniloraError('E_FORMAT', `run ${id} is unreadable: ${e.message}`, { hint: 'pass --force to delete it anyway' });
    }
  });
  for (const r of records) {
    if (effectiveStatus(r, now) === 'running' && opts.force !== true) {
      throw new CliniloraError('E_ARG', `run ${r.id} is running (heartbeat ${r.times.heartbeat})`, {
        field: 'status',
        found: 'running',
        hint: 'wait for it to end, or pass --force to delete it anyway',
      });
    }
  }
  const removed: string[] = [];
  for (const r of records) {
    if (removed.includes(r.id)) continue;
    const dir = join(runsDir(opts.root), r.id);
    const trash = join(runsDir(opts.root), `.${r.id}.removing-${process.pid}`);
    renameSync(dir, trash);
    rmSync(trash, { recursive: true, force: true });
    removed.push(r.id);
  }
  return removed;
}

/** Tags are single words: letters, digits and . _ - : / + = @. */
const TAG = /^[\w.:/+=@-]+$/;

/**
 * Adds (or with `remove`, removes) tags on a run, under the run's writer lock (a run being written by
 * a live process is refused by the lock with its pid). Returns the run's tags afterwards.
 */
export function tagRun(ref: string, tags: readonly string[], opts: { root?: string; remove?: boolean } = {}): string[] {
  for (const t of tags) {
    if (!TAG.test(t)) throw new CliniloraError('E_ARG', `bad tag '${t}'`, { field: 'tag', expected: 'letters, digits and . _ - : / + = @ (no spaces)', found: JSON.stringify(t) });
  }
  const o = opts.root !== undefined ? { root: opts.root } : {};
  const id = findRun(ref, o).id;
  const dir = join(runsDir(opts.root), id);
  const release = acquireLock(dir);
  try {
    const adapter = new RunFileAdapter(join(dir, RUN_FILE));
    const record = adapter.read();
    if (record === null) throw new CliniloraError('E_MISSING', 'run record disappeared', { file: adapter.file });
    const next = opts.remove === true ? record.tags.filter((t) => !tags.includes(t)) : [...record.tags, ...tags.filter((t) => !record.tags.includes(t))];
    const unique = [...new Set(next)];
    if (!same(unique, record.tags)) adapter.write({ ...record, tags: unique });
    return unique;
  } finally {
    release();
  }
}
