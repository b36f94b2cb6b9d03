/**
 * The run record: what `experiments/runs/<id>/run.json` holds, and its validator (run on every write
 * and every read; a broken record is an error naming the field). Readers accept every version up to
 * RUN_SCHEMA_VERSION (older records are upgraded in memory: see upgradeRecord) and refuse newer ones
 * with a clear error, since an older reader cannot know what a newer field means.
 *
 * Version history:
 *   1  the first record.
 *   2  adds `seeds`, `data.sources` (source files' sha256 in the record itself) and `reproduction`
 *      (the verdict of a `clinilora reproduce` run).
 */
import { CliniloraError } from '../errors.ts';

export const RUN_SCHEMA = 'clinilora.run';
export const RUN_SCHEMA_VERSION = 2;

export const RUN_KINDS = ['train', 'eval', 'reproduce', 'notebook'] as const;
export type RunKind = (typeof RUN_KINDS)[number];
/** 'crashed' is never written by a live run: it is what a stale 'running' record reads as (see isStale). */
export const RUN_STATUSES = ['running', 'completed', 'failed', 'interrupted', 'crashed'] as const;
export type RunStatus = (typeof RUN_STATUSES)[number];
export type FinalStatus = Exclude<RunStatus, 'running' | 'crashed'>;

/** One logged optimizer step. The same step may appear twice after a resume: see stepSeries(). */
export interface StepMetrics {
  step: number;
  /** null when the loss was not finite (NaN/Infinity: JSON cannot hold them). */
  loss: number | null;
  lr: number;
  tokensPerSec?: number;
  /** null when not finite. */
  gradNorm?: number | null;
  epoch?: number;
  /** Milliseconds since the run started (wall clock), filled in by logStep. */
  ms?: number;
}

export interface EvalEntry {
  /** Optimizer step it was taken at; null for a standalone evaluation. */
  step: number | null;
  split: string;
  metrics: Record<string, number>;
  time: string;
}

export interface Artifact {
  /** Relative to CLINILORA_HOME when inside it, else absolute. */
  path: string;
  bytes: number;
  sha256: string;
  kind?: string;
}

export interface GitInfo {
  isRepo: boolean;
  /** HEAD's sha; null when not a repository, no commit yet, or git is missing. */
  commit: string | null;
  branch: string | null;
  /** Staged, unstaged or untracked changes against HEAD; null when not a repository. */
  dirty: boolean | null;
  /** Untracked (not ignored) files, at most 200. */
  untracked: string[];
  /** Why the fields are null, when they are. */
  note?: string;
  /**
   * A dirty tree's patch against HEAD (staged and unstaged changes; untracked files are only listed
   * above), written next to run.json; absent for a clean tree.
   */
  patchFile?: string;
  patchSha256?: string;
  patchBytes?: number;
}

export interface DataInfo {
  task: string;
  /** sha256 of the split manifest (its own `sha256` field, verifiable with verifyManifest). */
  manifestSha256: string;
  /** The manifest copied next to run.json (relative to the run directory): sample IDs per split. */
  manifestFile: string;
  /** Where the dataset was read from. */
  dir: string | null;
  counts: Record<string, number>;
  generator: { name: string; version: string };
  /** Source files the dataset was built from, with sha256 (v2; a copy of the manifest's `sources`). */
  sources?: { path: string; bytes: number; sha256: string }[];
}

export interface EnvInfo {
  node: string;
  platform: string;
  arch: string;
  osRelease: string;
  cpu: string;
  cpus: number;
  pid: number;
  host: string;
  backend: { name: string; threads: number; simd: boolean; native?: boolean } | null;
  /** Installed versions of the package's declared dependencies (name → version). */
  packages?: Record<string, string>;
  /** sha256 of package-lock.json (null when there is none). */
  lockfileSha256?: string | null;
}

/** The base model a run loaded. */
export interface BaseModelInfo {
  /** The config's model.base (a directory, a hub name or a preset). */
  nameOrPath: string;
  /** sha256 over the weights (null for a generated preset base). */
  sha256: string | null;
  quantization: string;
}

/** One place where a re-run differs from the run it reproduces. */
export interface Difference {
  /** What was compared: the split manifest, a logged step, an evaluation, a final metric, the status. */
  where: 'data' | 'step' | 'eval' | 'metric' | 'status';
  /** The optimizer step (step and eval differences), else null. */
  step: number | null;
  /** The evaluation's split (eval differences). */
  split?: string;
  /** The metric or field: 'loss', 'gradNorm', 'accuracy', 'samples.train[3]'... */
  key: string;
  /** The recorded value and the re-run's (null: absent or not finite). */
  a: number | string | null;
  b: number | string | null;
}

/** The verdict of a `reproduce` run (kind 'reproduce'), v2. */
export interface ReproductionInfo {
  /** The run reproduced. */
  of: string;
  /** The re-run (a train run); null when none was made (e.g. the sample IDs differed). */
  rerun: string | null;
  reproduced: boolean;
  /** 'exact' (same backend: bit-identical values) or 'tolerance' (|a − b| <= atol + rtol·|a|). */
  mode: 'exact' | 'tolerance';
  tolerance: { rtol: number; atol: number } | null;
  /** Where the re-run's code came from: the working tree, or a temporary worktree at the recorded commit + patch. */
  source: 'working-tree' | 'checkout';
  /** Values compared (timings are never compared). */
  compared: { samples: number; steps: number; evals: number; metrics: number };
  /** The first difference: data first, then in step order, final metrics and status last. */
  firstDifference: Difference | null;
  /** The first differences (at most 20) and how many there were in all. */
  differences: Difference[];
  differenceCount: number;
  /** What differs in the setup (config keys, data, commit, environment): the candidates to explain a difference. */
  setup: string[];
  notes: string[];
}

export interface RunRecord {
  schema: typeof RUN_SCHEMA;
  version: number;
  id: string;
  name: string;
  task: string;
  kind: RunKind;
  status: RunStatus;
  tags: string[];
  times: { started: string; heartbeat: string; ended: string | null; resumed: string[] };
  /** The resolved config (src/config) as a plain JSON object, and its configHash. */
  config: Record<string, unknown>;
  configHash: string;
  seed: number;
  /** The seeds in play (v2): `run` (the config's), `data` (the split manifest's), `init` (a random base's). */
  seeds?: Record<string, number>;
  data: DataInfo | null;
  /** Optional within version 1 (records written before it existed lack it). */
  baseModel?: BaseModelInfo | null;
  git: GitInfo;
  env: EnvInfo;
  /** Append-only, in logging order. */
  steps: StepMetrics[];
  evals: EvalEntry[];
  /** Final metrics, set by finish(). */
  metrics: Record<string, number> | null;
  artifacts: Artifact[];
  /** Lineage: runs this one derives from (base model's training run, the run reproduced…). */
  parents: { id: string; role: string }[];
  error: { message: string; stack: string | null; code: string | null } | null;
  /** Set on kind 'reproduce' runs (v2). */
  reproduction?: ReproductionInfo | null;
  /** The notebook and cell that opened the run (v2; null or absent outside a notebook). */
  origin?: RunOrigin | null;
}

/** Where a run was started from when a notebook cell opened it (src/notebook/origin.ts fills it). */
export interface RunOrigin {
  kind: 'notebook';
  notebook: string;
  cell: number | null;
  cellId: string | null;
  executionCount: number | null;
  /** The `notebook` run executing the notebook headless, if any. */
  run: string | null;
}

// --- validation -------------------------------------------------------------------------------------

type Check = (v: unknown, path: string) => string | null;

const isObj = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
const t = (expected: string, ok: (v: unknown) => boolean): Check => (v) => (ok(v) ? null : expected);
const string = t('a string', (v) => typeof v === 'string');
const nonEmpty = t('a non-empty string', (v) => typeof v === 'string' && v.length > 0);
const isoTime = t('an ISO-8601 time', (v) => typeof v === 'string' && !Number.isNaN(Date.parse(v)));
const number = t('a finite number', (v) => typeof v === 'number' && Number.isFinite(v));
const count = t('an integer >= 0', (v) => typeof v === 'number' && Number.isInteger(v) && v >= 0);
const bool = t('true or false', (v) => typeof v === 'boolean');
const sha = t('a sha256 (64 hex digits)', (v) => typeof v === 'string' && /^[0-9a-f]{64}$/.test(v));
const oneOf = (xs: readonly string[]): Check => t(xs.map((x) => `'${x}'`).join(' | '), (v) => typeof v === 'string' && xs.includes(v));
const nullable = (c: Check): Check => (v, p) => (v === null ? null : c(v, p));
const optional = (c: Check): Check => (v, p) => (v === undefined ? null : c(v, p));
const numberMap = t('a mapping of names to numbers', (v) => isObj(v) && Object.values(v).every((x) => typeof x === 'number'));
const anyObject = t('a mapping', isObj);

/** Problems are collected as [field path, expected, found]. */
type Problems = [string, string, unknown][];

function obj(fields: Record<string, Check>): Check {
  return (v, path) => {
    if (!isObj(v)) return 'a mapping';
    const problems: Problems = [];
    for (const k of Object.keys(v)) if (!(k in fields)) problems.push([`${path}.${k}`, 'no such field (unknown key)', v[k]]);
    for (const [k, c] of Object.entries(fields)) collect(problems, c, v[k], `${path}.${k}`);
    if (problems.length === 0) return null;
    throw new FieldProblems(problems);
  };
}

function list(item: Check): Check {
  return (v, path) => {
    if (!Array.isArray(v)) return 'a list';
    const problems: Problems = [];
    // Stop at the first broken item: a list of 10k broken steps needs one line, not 10k.
    for (let i = 0; i < v.length && problems.length === 0; i++) collect(problems, item, v[i], `${path}[${i}]`);
    if (problems.length === 0) return null;
    throw new FieldProblems(problems);
  };
}

/** Runs one check, adding its problem (or its children's) to `problems`. */
function collect(problems: Problems, c: Check, v: unknown, path: string): void {
  try {
    const r = c(v, path);
    if (r !== null) problems.push([path, r, v]);
  } catch (e) {
    if (!(e instanceof FieldProblems)) throw e;
    problems.push(...e.problems);
  }
}

class FieldProblems extends Error {
  constructor(readonly problems: Problems) {
    super('field problems');
  }
}

const dataCheck = (v2: boolean): Check =>
  nullable(
    obj({
      task: nonEmpty,
      manifestSha256: sha,
      manifestFile: nonEmpty,
      dir: nullable(string),
      counts: numberMap,
      generator: obj({ name: string, version: string }),
      ...(v2 ? { sources: optional(list(obj({ path: string, bytes: count, sha256: sha }))) } : {}),
    }),
  );

const RECORD_V1: Record<string, Check> = {
  schema: t(`'${RUN_SCHEMA}'`, (v) => v === RUN_SCHEMA),
  version: count,
  id: t('a run id (letters, digits, -, _)', (v) => typeof v === 'string' && /^[A-Za-z0-9_-]+$/.test(v)),
  name: string,
  task: nonEmpty,
  kind: oneOf(RUN_KINDS),
  status: oneOf(RUN_STATUSES),
  tags: list(string),
  times: obj({ started: isoTime, heartbeat: isoTime, ended: nullable(isoTime), resumed: list(isoTime) }),
  config: anyObject,
  configHash: sha,
  seed: count,
  data: dataCheck(false),
  baseModel: optional(nullable(obj({ nameOrPath: nonEmpty, sha256: nullable(sha), quantization: string }))),
  git: obj({
    isRepo: bool,
    commit: nullable(string),
    branch: nullable(string),
    dirty: nullable(bool),
    untracked: list(string),
    note: optional(string),
    patchFile: optional(nonEmpty),
    patchSha256: optional(sha),
    patchBytes: optional(count),
  }),
  env: obj({
    node: string,
    platform: string,
    arch: string,
    osRelease: string,
    cpu: string,
    cpus: count,
    pid: count,
    host: string,
    backend: nullable(obj({ name: nonEmpty, threads: count, simd: bool, native: optional(bool) })),
    packages: optional(t('a mapping of package names to versions', (v) => isObj(v) && Object.values(v).every((x) => typeof x === 'string'))),
    lockfileSha256: optional(nullable(sha)),
  }),
  steps: list(
    obj({ step: count, loss: nullable(number), lr: number, tokensPerSec: optional(number), gradNorm: optional(nullable(number)), epoch: optional(number), ms: optional(number) }),
  ),
  evals: list(obj({ step: nullable(count), split: string, metrics: numberMap, time: isoTime })),
  metrics: nullable(numberMap),
  artifacts: list(obj({ path: nonEmpty, bytes: count, sha256: sha, kind: optional(string) })),
  parents: list(obj({ id: nonEmpty, role: nonEmpty })),
  error: nullable(obj({ message: string, stack: nullable(string), code: nullable(string) })),
};

const diffValue = t('a number, a string or null', (v) => v === null || typeof v === 'string' || (typeof v === 'number' && Number.isFinite(v)));
const difference = obj({
  where: oneOf(['data', 'step', 'eval', 'metric', 'status']),
  step: nullable(count),
  split: optional(string),
  key: nonEmpty,
  a: diffValue,
  b: diffValue,
});

const RECORD_V2: Record<string, Check> = {
  ...RECORD_V1,
  origin: optional(
    nullable(
      obj({
        kind: oneOf(['notebook']),
        notebook: nonEmpty,
        cell: nullable(count),
        cellId: nullable(string),
        executionCount: nullable(count),
        run: nullable(nonEmpty),
      }),
    ),
  ),
  seeds: optional(t('a mapping of names to integer seeds', (v) => isObj(v) && Object.values(v).every((x) => typeof x === 'number' && Number.isInteger(x) && x >= 0))),
  data: dataCheck(true),
  reproduction: optional(
    nullable(
      obj({
        of: nonEmpty,
        rerun: nullable(nonEmpty),
        reproduced: bool,
        mode: oneOf(['exact', 'tolerance']),
        tolerance: nullable(obj({ rtol: number, atol: number })),
        source: oneOf(['working-tree', 'checkout']),
        compared: obj({ samples: count, steps: count, evals: count, metrics: count }),
        firstDifference: nullable(difference),
        differences: list(difference),
        differenceCount: count,
        setup: list(string),
        notes: list(string),
      }),
    ),
  ),
};

/** The fields of each schema version (index = version). */
const FIELDS: Record<number, Record<string, Check>> = { 1: RECORD_V1, 2: RECORD_V2 };

/**
 * An older record as the current version: v1 → v2 adds nothing required (its new fields are
 * optional), so only the version number changes. A record read and written again is written as v2.
 */
export function upgradeRecord(record: RunRecord): RunRecord {
  if (record.version === RUN_SCHEMA_VERSION) return record;
  return { ...record, version: RUN_SCHEMA_VERSION };
}

/**
 * Checks a record against the schema. Throws CliniloraError (E_FORMAT) naming the file and the first
 * broken field (all of them in the message); a record from a newer schema version is refused.
 */
export function validateRunRecord(value: unknown, file = 'run.json'): RunRecord {
  if (!isObj(value)) throw new CliniloraError('E_FORMAT', 'a run record must be a JSON object', { file, expected: 'an object', found: typeof value });
  if (value.schema !== RUN_SCHEMA) {
    throw new CliniloraError('E_FORMAT', 'not a clinilora run record', { file, field: 'schema', expected: `'${RUN_SCHEMA}'`, found: JSON.stringify(value.schema) });
  }
  const version = value.version;
  if (typeof version !== 'number' || !Number.isInteger(version) || version < 1) {
    throw new CliniloraError('E_FORMAT', 'bad schema version', { file, field: 'version', expected: 'an integer >= 1', found: JSON.stringify(version) });
  }
  if (version > RUN_SCHEMA_VERSION) {
    throw new CliniloraError('E_UNSUPPORTED', `run record written by a newer clinilora (schema version ${version})`, {
      file,
      field: 'version',
      expected: `<= ${RUN_SCHEMA_VERSION}`,
      found: String(version),
      hint: 'upgrade clinilora to read it',
    });
  }
  const problems: Problems = [];
  collect(problems, obj(FIELDS[version]!), value, 'run');
  if (problems.length > 0) {
    const [field, expected, found] = problems[0] as [string, string, unknown];
    const short = (v: unknown): string => (v === undefined ? 'nothing' : (JSON.stringify(v) ?? String(v)).slice(0, 60));
    const rest = problems.length > 1 ? ` (+${problems.length - 1} more: ${problems.slice(1).map((p) => p[0]).join(', ')})` : '';
    throw new CliniloraError('E_FORMAT', `invalid run record${rest}`, { file, field: field.replace(/^run\./, ''), expected, found: short(found) });
  }
  return upgradeRecord(value as unknown as RunRecord);
}

/** The steps with later entries for a step replacing earlier ones (a resumed run), in step order. */
export function stepSeries(record: Pick<RunRecord, 'steps'>): StepMetrics[] {
  const byStep = new Map<number, StepMetrics>();
  for (const s of record.steps) byStep.set(s.step, s);
  return [...byStep.values()].sort((a, b) => a.step - b.step);
}

// Liveness (what a 'running' record whose process died reads as) lives in liveness.ts.
export { effectiveStatus, isStale, PID_TRUST_MS, pidAlive, STALE_MS, staleReason } from './liveness.ts';
