/**
 * The dataset registry: one entry point for the three tasks. Builds a task's dataset with the real
 * Phi-3 tokenizer as its token counter, writes it (atomically, after the leakage check) under
 * `data/generated/<task>/`, and loads it back verified.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CliniloraError } from '../errors.ts';
import { buildAlpacareDataset } from './alpacare/index.ts';
import { buildAuditorDataset } from './auditor/index.ts';
import { buildHeartDataset } from './heart/index.ts';
import { loadDataset, writeDataset, type SplitManifest } from './manifest.ts';
import { assertNoLeakage, type SplitRatios, type Splits } from './split.ts';
import { phi3TokenCounter } from './tokens.ts';

export const TASKS = ['auditor', 'heart-risk', 'alpacare'] as const;
export type Task = (typeof TASKS)[number];

export interface BuildDatasetOptions {
  /** Split and generator seed (default 42). */
  seed?: number;
  /** auditor: reports to generate (default 5000). */
  n?: number;
  /** heart-risk: incomplete variants (default 100). */
  incomplete?: number;
  /** heart-risk: mention the follow-up time (off by default: it leaks the outcome). */
  includeTime?: boolean;
  /** alpacare: a MedInstruct-52k file (JSON or JSONL); default the built-in corpus. */
  source?: string;
  /** auditor, alpacare: drop samples longer than this many tokens (real Phi-3 tokenizer). */
  maxTokens?: number;
  /** Split fractions or absolute counts (default: the task's own). */
  ratios?: SplitRatios;
}

/** Which task-specific options each task takes (seed and ratios apply to all). */
export const TASK_OPTIONS: Readonly<Record<Task, readonly (keyof BuildDatasetOptions)[]>> = {
  auditor: ['n', 'maxTokens'],
  'heart-risk': ['incomplete', 'includeTime'],
  alpacare: ['source', 'maxTokens'],
};
const TASK_SPECIFIC: readonly (keyof BuildDatasetOptions)[] = ['n', 'incomplete', 'includeTime', 'source', 'maxTokens'];

export interface TaskDataset {
  splits: Splits;
  manifest: SplitManifest;
}

export interface WrittenDataset extends TaskDataset {
  dir: string;
}

export function isTask(name: string): name is Task {
  return (TASKS as readonly string[]).includes(name);
}

/** Checks a task name; an unknown one is an error listing the tasks. */
export function parseTask(name: string | undefined): Task {
  if (name !== undefined && isTask(name)) return name;
  throw new CliniloraError('E_ARG', name === undefined ? 'no task given' : `unknown task '${name}'`, {
    field: 'task',
    expected: TASKS.join(' | '),
    found: name === undefined ? 'nothing' : JSON.stringify(name),
  });
}

/** The package root (the directory holding package.json), found from this module, not the cwd. */
export function packageRoot(): string {
  return fileURLToPath(new URL('../../', import.meta.url));
}

/** Where clinilora keeps generated data and runs: `CLINILORA_HOME` when set, else the package root. */
export function cliniloraHome(): string {
  const env = process.env.CLINILORA_HOME;
  return env !== undefined && env !== '' ? resolve(env) : packageRoot();
}

/** `<root>/data/generated/<task>`; root defaults to `cliniloraHome()`. */
export function defaultDatasetDir(task: Task, root?: string): string {
  return join(root !== undefined ? resolve(root) : cliniloraHome(), 'data', 'generated', parseTask(task));
}

function checkOptions(task: Task, opts: BuildDatasetOptions): void {
  const allowed = TASK_OPTIONS[task];
  for (const key of TASK_SPECIFIC) {
    if (opts[key] !== undefined && !allowed.includes(key)) {
      const takers = TASKS.filter((t) => TASK_OPTIONS[t].includes(key));
      throw new CliniloraError('E_ARG', `option '${key}' does not apply to task '${task}'`, {
        field: key,
        expected: `only with ${takers.join(' or ')}; ${task} takes ${allowed.join(', ')}, seed, ratios`,
        found: JSON.stringify(opts[key]),
      });
    }
  }
  for (const key of ['seed', 'n', 'incomplete', 'maxTokens'] as const) {
    const v = opts[key];
    if (v !== undefined && (!Number.isInteger(v) || v < (key === 'seed' || key === 'incomplete' ? 0 : 1))) {
      throw new CliniloraError('E_ARG', `option '${key}' must be an integer`, {
        field: key,
        expected: key === 'seed' || key === 'incomplete' ? 'an integer >= 0' : 'an integer >= 1',
        found: String(v),
      });
    }
  }
}

/**
 * Builds a task's dataset in memory: the task's builder with the real Phi-3 tokenizer as its token
 * counter (where it takes one). Same task, options and seed: same samples, same manifest sha256.
 */
export async function buildDataset(task: Task, opts: BuildDatasetOptions = {}): Promise<TaskDataset> {
  parseTask(task);
  checkOptions(task, opts);
  const seed = opts.seed ?? 42;
  switch (task) {
    case 'auditor': {
      const countTokens = await phi3TokenCounter();
      const { splits, manifest } = buildAuditorDataset({ seed, n: opts.n, ratios: opts.ratios, countTokens, maxTokens: opts.maxTokens });
      return { splits, manifest };
    }
    case 'heart-risk': {
      const { splits, manifest } = buildHeartDataset({ seed, incomplete: opts.incomplete, includeTime: opts.includeTime, ratios: opts.ratios });
      return { splits, manifest };
    }
    case 'alpacare': {
      const countTokens = await phi3TokenCounter();
      const { splits, manifest } = buildAlpacareDataset({ seed, source: opts.source, ratios: opts.ratios, countTokens, maxTokens: opts.maxTokens });
      return { splits, manifest };
    }
  }
}

/**
 * Writes a built dataset to `dir` (default `defaultDatasetDir(task)`) as one atomic directory;
 * refuses (nothing written) when a sample or source record is in two splits.
 */
export function writeTaskDataset(task: Task, data: TaskDataset, dir: string = defaultDatasetDir(task)): WrittenDataset {
  if (data.manifest.task !== task) {
    throw new CliniloraError('E_ARG', 'dataset is for another task', { field: 'manifest.task', expected: task, found: data.manifest.task });
  }
  const out = resolve(dir);
  writeDataset(out, data.splits, data.manifest);
  return { dir: out, splits: data.splits, manifest: data.manifest };
}

/** Builds and writes a task's dataset; returns where it went and what it holds. */
export async function buildAndWriteDataset(task: Task, opts: BuildDatasetOptions = {}, dir?: string): Promise<WrittenDataset> {
  const out = dir ?? defaultDatasetDir(task); // resolved now: CLINILORA_HOME as it is at the call
  return writeTaskDataset(task, await buildDataset(task, opts), out);
}

/**
 * Loads a task's dataset from `dir` (default `defaultDatasetDir(task)`), verifying the manifest's
 * sha256, every sample ID against its content, the files against the manifest, and leakage again
 * (a dataset edited by hand, manifest and all, is still checked).
 */
export function loadTaskDataset(task: Task, dir: string = defaultDatasetDir(task)): WrittenDataset {
  parseTask(task);
  const out = resolve(dir);
  const mfile = join(out, 'manifest.json');
  if (!existsSync(mfile)) {
    throw new CliniloraError('E_MISSING', `no ${task} dataset here`, {
      file: mfile,
      hint: `run \`clinilora data build ${task}${dir === defaultDatasetDir(task) ? '' : ` --out ${dir}`}\``,
    });
  }
  const ds = loadDataset(out);
  if (ds.manifest.task !== task) {
    throw new CliniloraError('E_FORMAT', 'dataset is for another task', { file: mfile, field: 'task', expected: task, found: ds.manifest.task });
  }
  assertNoLeakage(ds.splits, out);
  return { dir: out, splits: ds.splits, manifest: ds.manifest };
}

export { chatTokenCounts, chatTokenLength, phi3TokenCounter, phi3Tokenizer, sampleMessages, type ChatTokenCounts, type TokenCounter } from './tokens.ts';
export type { Sample, SplitName, TaskName } from './sample.ts';
export type { SplitRatios, Splits } from './split.ts';
export type { SplitManifest } from './manifest.ts';
