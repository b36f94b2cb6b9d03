/**
 * Where run records live and how they reach the disk. One directory per run,
 * `<home>/experiments/runs/<id>/run.json`, written through lowdb's LowSync with our own adapter:
 * - lowdb's JSONFilePreset swaps in an in-memory adapter when NODE_ENV=test (FACTS); we construct
 *   LowSync with a file adapter directly, so records reach the disk under the test runner too.
 * - lowdb locks only inside one process (steno's fixed temp name lets two processes corrupt one file);
 *   so each run directory has one writer, enforced by an exclusive `run.lock` (pid, host), and every
 *   write goes through writeFileAtomic (unique temp name, fsync, rename): a crash leaves the previous
 *   complete record, never half of one.
 * - The record is validated on every write and every read.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, openSync, readdirSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { LowSync, type SyncAdapter } from 'lowdb';
import { cliniloraHome } from '../data/index.ts';
import { CliniloraError } from '../errors.ts';
import { writeFileAtomic } from '../util/atomic.ts';
import { validateRunRecord, type RunRecord } from './schema.ts';

export const RUN_FILE = 'run.json';
export const LOCK_FILE = 'run.lock';

/** `<home>/experiments/runs`, home = `root` or CLINILORA_HOME or the package root. */
export function runsDir(root?: string): string {
  return join(root !== undefined ? resolve(root) : cliniloraHome(), 'experiments', 'runs');
}

/**
 * A sortable, unique id: UTC time to the millisecond, then 6 random hex digits from node:crypto (not
 * the seeded Rng: two runs with one seed must still get different ids). '20250101-120000-123-a1b2c3'.
 */
export function newRunId(now = new Date()): string {
  const iso = now.toISOString(); // 2025-01-01T12:00:00.123Z
  const stamp = `${iso.slice(0, 10).replaceAll('-', '')}-${iso.slice(11, 19).replaceAll(':', '')}-${iso.slice(20, 23)}`;
  return `${stamp}-${randomBytes(3).toString('hex')}`;
}

/**
 * JSON with 2-space indentation, except one line per logged step (llm.c's logger habit): a 10k-step
 * record stays small and readable, and a diff shows the new steps as new lines.
 */
export function stringifyRecord(record: RunRecord): string {
  const token = `__steps_${randomBytes(6).toString('hex')}__`;
  const body = JSON.stringify({ ...record, steps: token }, null, 2);
  const steps = record.steps.length === 0 ? '[]' : `[\n${record.steps.map((s) => `    ${JSON.stringify(s)}`).join(',\n')}\n  ]`;
  return `${body.replace(`"${token}"`, () => steps)}\n`;
}

/** lowdb adapter for one run.json: validate, then write atomically; read and validate. */
export class RunFileAdapter implements SyncAdapter<RunRecord> {
  constructor(readonly file: string) {}

  read(): RunRecord | null {
    if (!existsSync(this.file)) return null;
    return parseRecord(readFileSync(this.file, 'utf8'), this.file);
  }

  write(data: RunRecord): void {
    validateRunRecord(data, this.file);
    writeFileAtomic(this.file, stringifyRecord(data));
  }
}

function parseRecord(text: string, file: string): RunRecord {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new CliniloraError('E_FORMAT', `run record is not valid JSON: ${(e as Error).message}`, { file });
  }
  return validateRunRecord(value, file);
}

/** A lowdb database over one run file (the record must already exist, or `initial` is used). */
export function runDb(file: string, initial: RunRecord): LowSync<RunRecord> {
  return new LowSync<RunRecord>(new RunFileAdapter(file), initial);
}

/** Resolves a run id or a path (to run.json or its directory) to the run.json path. */
export function runFile(idOrPath: string, root?: string): string {
  if (isAbsolute(idOrPath) || idOrPath.includes('/') || idOrPath.includes('\\') || idOrPath.endsWith('.json')) {
    const p = resolve(idOrPath);
    return p.endsWith('.json') ? p : join(p, RUN_FILE);
  }
  return join(runsDir(root), idOrPath, RUN_FILE);
}

/** Reads and validates one record by id or path. */
export function readRun(idOrPath: string, opts: { root?: string } = {}): RunRecord {
  const file = runFile(idOrPath, opts.root);
  if (!existsSync(file)) {
    throw new CliniloraError('E_MISSING', 'run record not found', { file, hint: `list runs with 'clinilora runs ls' (runs live in ${runsDir(opts.root)})` });
  }
  return parseRecord(readFileSync(file, 'utf8'), file);
}

export interface RunListing {
  /** Valid records, newest first (ids sort by time). */
  runs: RunRecord[];
  /** Records that could not be read, with why: they are shown, never silently skipped. */
  broken: { file: string; error: string }[];
}

/** Every run under the runs directory; broken records are listed apart, not thrown. */
export function listRuns(opts: { root?: string } = {}): RunListing {
  const dir = runsDir(opts.root);
  const out: RunListing = { runs: [], broken: [] };
  if (!existsSync(dir)) return out;
  const ids = readdirSync(dir, { withFileTypes: true })
    .filter((d) => d.isDirectory() && !d.name.startsWith('.'))
    .map((d) => d.name)
    .sort()
    .reverse();
  for (const id of ids) {
    const file = join(dir, id, RUN_FILE);
    if (!existsSync(file)) continue; // a directory being created right now, or not a run
    try {
      out.runs.push(parseRecord(readFileSync(file, 'utf8'), file));
    } catch (e) {
      out.broken.push({ file, error: (e as Error).message });
    }
  }
  return out;
}

// --- one writer per run ----------------------------------------------------------------------------

interface LockInfo {
  pid: number;
  host: string;
  time: string;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Takes the run directory's writer lock (O_EXCL create). A lock left by a dead process on this host
 * is taken over; a live one is an error naming its pid and host.
 */
export function acquireLock(runDir: string): () => void {
  const file = join(runDir, LOCK_FILE);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(file, 'wx');
      const info: LockInfo = { pid: process.pid, host: hostname(), time: new Date().toISOString() };
      writeSync(fd, JSON.stringify(info));
      closeSync(fd);
      let released = false;
      return () => {
        if (released) return;
        released = true;
        rmSync(file, { force: true });
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      let holder: Partial<LockInfo> = {};
      try {
        holder = JSON.parse(readFileSync(file, 'utf8')) as LockInfo;
      } catch {
        // half-written lock: its writer died between create and write
      }
      const stale = holder.pid === undefined || (holder.host === hostname() && !alive(holder.pid));
      if (stale && attempt === 0) {
        rmSync(file, { force: true });
        continue;
      }
      if (holder.pid === process.pid && holder.host === hostname()) {
        throw new CliniloraError('E_IO', 'run is already open for writing in this process', {
          file,
          found: `an open handle since ${holder.time ?? '?'}`,
          hint: 'finish() the first handle (a notebook cell run twice opens a run twice), or open a new run',
        });
      }
      throw new CliniloraError('E_IO', 'run is open for writing in another process', {
        file,
        found: `pid ${holder.pid ?? '?'} on ${holder.host ?? '?'} since ${holder.time ?? '?'}`,
        hint: 'one process writes a run; wait for it or remove the lock if that process is gone',
      });
    }
  }
  throw new CliniloraError('E_IO', 'could not take the run lock', { file });
}
