/**
 * A live run: `openRun()` creates `experiments/runs/<id>/run.json` and returns a handle the trainer
 * (or an evaluation) reports through — a callback-style sink in mlx-lm's sense, holding no training
 * logic. Steps are append-only and keyed by step (llm.c's logger): after a resume, a step logged again
 * is appended too, and `stepSeries()` keeps the latest entry per step.
 *
 * Writes are batched: logStep and heartbeat write at most every `flushMs` (default 2 s); evals,
 * artifacts, data and finish write at once; a process exit writes the last state synchronously. So a
 * crash loses at most the last `flushMs` of steps, and the file is always a complete, valid record.
 */
import { createHash } from 'node:crypto';
import { createReadStream, mkdirSync, statSync } from 'node:fs';
import { hostname } from 'node:os';
import { isAbsolute, join, relative, resolve } from 'node:path';
import type { LowSync } from 'lowdb';
import { configHash } from '../config/load.ts';
import { cliniloraHome, packageRoot } from '../data/index.ts';
import type { SplitManifest } from '../data/manifest.ts';
import { CliniloraError } from '../errors.ts';
import { writeFileAtomic } from '../util/atomic.ts';
import { gitInfo, gitPatch } from './git.ts';
import { envInfo, type BackendSummary } from './env.ts';
import { baseDirOf, baseModelProducer, lineageFor } from './lineage.ts';
import { RUN_SCHEMA, RUN_SCHEMA_VERSION, type Artifact, type BaseModelInfo, type GitInfo, type EvalEntry, type FinalStatus, type ReproductionInfo, type RunKind, type RunRecord, type StepMetrics } from './schema.ts';
import { acquireLock, newRunId, readRun, RUN_FILE, runDb, runsDir } from './store.ts';
import { notebookOrigin } from '../notebook/origin.ts';

export type { BackendSummary } from './env.ts';

export interface OpenRunOptions {
  /** The resolved config (src/config): stored whole, with its hash. */
  config: Record<string, unknown> & { task?: string; seed?: number };
  kind?: RunKind;
  /** Default: the config's task. */
  task?: string;
  /** Human name, e.g. the config file's name; default `<task>-<kind>`. */
  name?: string;
  /** Default: config.seed. */
  seed?: number;
  /** The split manifest trained/evaluated on (copied next to run.json), and where the dataset lives. */
  manifest?: SplitManifest;
  dataDir?: string;
  backend?: BackendSummary | null;
  tags?: string[];
  /** Lineage; the context's (withRunParents) and CLINILORA_PARENTS's are added. */
  parents?: { id: string; role: string }[];
  /** Home holding experiments/runs (default CLINILORA_HOME or the package root). */
  root?: string;
  /** Repository whose commit is recorded (default the package root). */
  gitDir?: string;
  /** Longest time logged steps wait in memory (ms, default 2000). */
  flushMs?: number;
  /** Heartbeat period while the event loop is free (ms, default 10000; 0 = no timer). */
  heartbeatMs?: number;
}

export interface FinishOptions {
  metrics?: Record<string, number>;
  error?: unknown;
}

export interface RunHandle {
  readonly id: string;
  /** The run directory (artifacts may be written here). */
  readonly dir: string;
  /** run.json's path. */
  readonly file: string;
  /** The in-memory record (read-only view; written through the methods below). */
  readonly record: Readonly<RunRecord>;
  logStep(m: StepMetrics): void;
  logEval(m: { step?: number | null; split?: string; metrics: Record<string, number> }): void;
  /** Hashes the file (sha256) and records path, bytes, hash; a path added again is replaced. */
  addArtifact(path: string, opts?: { kind?: string }): Promise<Artifact>;
  setData(manifest: SplitManifest, dir?: string): void;
  setBackend(backend: BackendSummary | null): void;
  /**
   * Records the base model loaded (its weights' sha256 from `hashFile`/`hashFiles`, null for a
   * preset) and links the run that produced its weights, when one did (role 'base-model').
   */
  setBaseModel(info: BaseModelInfo): void;
  /** The verdict of a reproduction (kind 'reproduce' runs). */
  setReproduction(info: ReproductionInfo): void;
  heartbeat(): void;
  /** Writes now. */
  flush(): void;
  finish(status: FinalStatus, opts?: FinishOptions): void;
}

/** Open handles, written one last time if the process exits without finishing them. */
const open = new Set<Handle>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const h of open) h.closeOnExit();
  });
}

/** Creates a new run record (status 'running') and takes its writer lock. */
export async function openRun(opts: OpenRunOptions): Promise<RunHandle> {
  const task = opts.task ?? opts.config.task;
  if (typeof task !== 'string' || task === '') throw new CliniloraError('E_ARG', 'a run needs a task', { field: 'task', expected: 'config.task or opts.task', found: String(task) });
  const seed = opts.seed ?? opts.config.seed;
  if (typeof seed !== 'number' || !Number.isInteger(seed) || seed < 0) throw new CliniloraError('E_ARG', 'a run needs a seed', { field: 'seed', expected: 'an integer >= 0', found: String(seed) });
  const kind = opts.kind ?? 'train';
  const gitDir = opts.gitDir ?? packageRoot();
  let git: GitInfo = await gitInfo(gitDir);
  const base = runsDir(opts.root);
  mkdirSync(base, { recursive: true });
  // mkdir without `recursive` fails on an existing directory: each run directory has one creator.
  let id = newRunId();
  for (let i = 0; ; i++) {
    try {
      mkdirSync(join(base, id));
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST' || i > 5) throw e;
      id = newRunId();
    }
  }
  const dir = join(base, id);
  const unlock = acquireLock(dir);
  if (git.isRepo && git.dirty === true) git = await withPatch(git, gitDir, dir);
  const now = new Date().toISOString();
  const record: RunRecord = {
    schema: RUN_SCHEMA,
    version: RUN_SCHEMA_VERSION,
    id,
    name: opts.name ?? `${task}-${kind}`,
    task,
    kind,
    status: 'running',
    tags: [...(opts.tags ?? [])],
    times: { started: now, heartbeat: now, ended: null, resumed: [] },
    config: structuredClone(opts.config),
    configHash: configHash(opts.config),
    seed,
    seeds: { run: seed },
    data: null,
    git,
    env: envInfo(opts.backend ?? null),
    steps: [],
    evals: [],
    metrics: null,
    artifacts: [],
    parents: lineageFor(opts.parents),
    error: null,
    origin: notebookOrigin(),
  };
  const h = new Handle(runDb(join(dir, RUN_FILE), record), dir, opts.root, unlock, opts);
  try {
    if (opts.manifest !== undefined) h.setData(opts.manifest, opts.dataDir);
    else h.flush();
  } catch (e) {
    h.dispose();
    throw e;
  }
  return h;
}

/** Reopens an interrupted, failed or crashed run to continue it (same id; steps are appended). */
export function resumeRun(id: string, opts: Omit<OpenRunOptions, 'config' | 'kind' | 'task' | 'name' | 'seed' | 'manifest' | 'dataDir'> = {}): RunHandle {
  const prev = readRun(id, { root: opts.root });
  if (prev.status === 'completed') {
    throw new CliniloraError('E_ARG', 'a completed run cannot be resumed', { field: 'status', expected: 'interrupted, failed or crashed', found: 'completed' });
  }
  const dir = join(runsDir(opts.root), prev.id);
  const unlock = acquireLock(dir);
  const db = runDb(join(dir, RUN_FILE), prev);
  db.read(); // re-read under the lock
  const now = new Date().toISOString();
  Object.assign(db.data, { status: 'running', error: null });
  db.data.times = { ...db.data.times, heartbeat: now, ended: null, resumed: [...db.data.times.resumed, now] };
  // The new writer's pid: liveness (effectiveStatus) checks it.
  db.data.env = { ...db.data.env, pid: process.pid, host: hostname(), ...(opts.backend !== undefined ? { backend: opts.backend } : {}) };
  const h = new Handle(db, dir, opts.root, unlock, opts);
  h.flush();
  return h;
}

/** FACTS: `diff HEAD` (not plain `diff`) holds staged changes too. Written next to run.json. */
async function withPatch(git: GitInfo, gitDir: string, runDir: string): Promise<GitInfo> {
  const patch = await gitPatch(gitDir);
  if (patch === null || patch === '') return git;
  const patchFile = 'git.patch';
  writeFileAtomic(join(runDir, patchFile), patch);
  const bytes = Buffer.from(patch, 'utf8');
  return { ...git, patchFile, patchSha256: createHash('sha256').update(bytes).digest('hex'), patchBytes: bytes.byteLength };
}

function finite(x: number | null | undefined): number | null {
  return typeof x === 'number' && Number.isFinite(x) ? x : null;
}

class Handle implements RunHandle {
  readonly id: string;
  readonly file: string;
  private lastWrite = 0;
  private pending = false;
  private finished = false;
  private readonly startMs = Date.now();
  private readonly flushMs: number;
  private readonly timer: NodeJS.Timeout | undefined;
  private timerError: unknown;

  constructor(
    private readonly db: LowSync<RunRecord>,
    readonly dir: string,
    private readonly root: string | undefined,
    private readonly release: () => void,
    opts: { flushMs?: number; heartbeatMs?: number },
  ) {
    this.id = db.data.id;
    this.file = join(dir, RUN_FILE);
    this.flushMs = opts.flushMs ?? 2000;
    const hb = opts.heartbeatMs ?? 10_000;
    if (hb > 0) {
      this.timer = setInterval(() => {
        try {
          this.heartbeat();
        } catch (e) {
          this.timerError = e; // rethrown by the next call from the caller, not lost in a timer
        }
      }, hb);
      this.timer.unref();
    }
    open.add(this);
    installExitHook();
  }

  get record(): Readonly<RunRecord> {
    return this.db.data;
  }

  logStep(m: StepMetrics): void {
    this.live('logStep');
    if (!Number.isInteger(m.step) || m.step < 0) throw new CliniloraError('E_ARG', 'bad step', { field: 'step', expected: 'an integer >= 0', found: String(m.step) });
    if (!Number.isFinite(m.lr)) throw new CliniloraError('E_ARG', 'bad learning rate', { field: 'lr', expected: 'a finite number', found: String(m.lr) });
    const s: StepMetrics = { step: m.step, loss: finite(m.loss), lr: m.lr };
    if (m.tokensPerSec !== undefined && Number.isFinite(m.tokensPerSec)) s.tokensPerSec = m.tokensPerSec;
    if (m.gradNorm !== undefined) s.gradNorm = finite(m.gradNorm);
    if (m.epoch !== undefined && Number.isFinite(m.epoch)) s.epoch = m.epoch;
    s.ms = m.ms ?? Date.now() - this.startMs;
    this.db.data.steps.push(s);
    this.pending = true;
    this.maybeFlush();
  }

  logEval(m: { step?: number | null; split?: string; metrics: Record<string, number> }): void {
    this.live('logEval');
    const entry: EvalEntry = { step: m.step ?? null, split: m.split ?? 'validation', metrics: finiteMetrics(m.metrics, 'metrics'), time: new Date().toISOString() };
    this.db.data.evals.push(entry);
    this.flush();
  }

  async addArtifact(path: string, opts: { kind?: string } = {}): Promise<Artifact> {
    this.live('addArtifact');
    const abs = resolve(path);
    const bytes = statSync(abs).size;
    const sha256 = await hashFile(abs);
    const home = this.root !== undefined ? resolve(this.root) : cliniloraHome();
    const rel = relative(home, abs);
    const shown = rel !== '' && !rel.startsWith('..') && !isAbsolute(rel) ? rel : abs;
    const a: Artifact = { path: shown, bytes, sha256, ...(opts.kind !== undefined ? { kind: opts.kind } : {}) };
    this.live('addArtifact'); // finish() may have run while hashing
    this.db.data.artifacts = [...this.db.data.artifacts.filter((x) => x.path !== shown), a];
    this.flush();
    return a;
  }

  setData(manifest: SplitManifest, dir?: string): void {
    this.live('setData');
    const manifestFile = 'manifest.json';
    writeFileAtomic(join(this.dir, manifestFile), `${JSON.stringify(manifest, null, 2)}\n`);
    this.db.data.data = {
      task: manifest.task,
      manifestSha256: manifest.sha256,
      manifestFile,
      dir: dir ?? null,
      counts: { ...manifest.counts },
      generator: { ...manifest.generator },
      sources: (manifest.sources ?? []).map((f) => ({ path: f.path, bytes: f.bytes, sha256: f.sha256 })),
    };
    this.db.data.seeds = { ...this.db.data.seeds, data: manifest.seed };
    this.flush();
  }

  setBackend(backend: BackendSummary | null): void {
    this.live('setBackend');
    this.db.data.env = { ...this.db.data.env, backend };
    this.flush();
  }

  setBaseModel(info: BaseModelInfo): void {
    this.live('setBaseModel');
    this.db.data.baseModel = { nameOrPath: info.nameOrPath, sha256: info.sha256, quantization: info.quantization };
    const initSeed = /^preset:.*[?&]seed=(\d+)/.exec(info.nameOrPath)?.[1];
    if (initSeed !== undefined) this.db.data.seeds = { ...this.db.data.seeds, init: Number(initSeed) };
    const dir = baseDirOf(info.nameOrPath);
    if (dir !== null) {
      const home = this.root !== undefined ? resolve(this.root) : cliniloraHome();
      const producer = baseModelProducer(dir, [home, packageRoot()]);
      if (producer !== null && producer.id !== this.id && !this.db.data.parents.some((p) => p.id === producer.id)) {
        this.db.data.parents = [...this.db.data.parents, { id: producer.id, role: 'base-model' }];
      }
    }
    this.flush();
  }

  setReproduction(info: ReproductionInfo): void {
    this.live('setReproduction');
    this.db.data.reproduction = structuredClone(info);
    this.flush();
  }

  heartbeat(): void {
    if (this.finished) return;
    this.pending = true;
    this.maybeFlush();
  }

  flush(): void {
    this.db.data.times.heartbeat = new Date().toISOString();
    this.db.write();
    this.lastWrite = Date.now();
    this.pending = false;
  }

  finish(status: FinalStatus, opts: FinishOptions = {}): void {
    this.live('finish');
    const d = this.db.data;
    d.status = status;
    d.times.ended = new Date().toISOString();
    if (opts.metrics !== undefined) d.metrics = finiteMetrics(opts.metrics, 'metrics');
    if (opts.error !== undefined) d.error = errorInfo(opts.error);
    this.flush();
    this.dispose();
  }

  /** Last synchronous write at process exit; the status stays 'running' (it reads as crashed later). */
  closeOnExit(): void {
    try {
      if (this.pending) this.flush();
    } finally {
      this.dispose();
    }
  }

  dispose(): void {
    this.finished = true;
    if (this.timer !== undefined) clearInterval(this.timer);
    open.delete(this);
    this.release();
  }

  private maybeFlush(): void {
    if (this.pending && Date.now() - this.lastWrite >= this.flushMs) this.flush();
  }

  private live(what: string): void {
    if (this.timerError !== undefined) {
      const e = this.timerError;
      this.timerError = undefined;
      throw e;
    }
    if (this.finished) throw new CliniloraError('E_ARG', `${what} on a finished run`, { file: this.file, field: 'status', found: this.db.data.status });
  }
}

function finiteMetrics(m: Record<string, number>, field: string): Record<string, number> {
  for (const [k, v] of Object.entries(m)) {
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new CliniloraError('E_ARG', 'metrics must be finite numbers', { field: `${field}.${k}`, expected: 'a finite number', found: String(v) });
  }
  return { ...m };
}

function errorInfo(e: unknown): NonNullable<RunRecord['error']> {
  if (e instanceof Error) {
    const code = (e as { code?: unknown }).code;
    return { message: e.message, stack: e.stack ?? null, code: typeof code === 'string' ? code : null };
  }
  return { message: String(e), stack: null, code: null };
}

/** sha256 of one file (streamed). */
export function hashFile(path: string): Promise<string> {
  return new Promise((res, rej) => {
    const h = createHash('sha256');
    createReadStream(path)
      .on('data', (c) => h.update(c))
      .on('error', rej)
      .on('end', () => res(h.digest('hex')));
  });
}

/** One sha256 over several files (e.g. a checkpoint's shards): each file's path, size and bytes, in sorted path order. */
export async function hashFiles(paths: readonly string[], base = '.'): Promise<string> {
  const h = createHash('sha256');
  for (const p of [...paths].sort()) {
    const rel = relative(resolve(base), resolve(p));
    h.update(`${rel}\0${statSync(p).size}\0${await hashFile(p)}\n`);
  }
  return h.digest('hex');
}
