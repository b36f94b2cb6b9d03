/**
 * `clinilora reproduce <id>`: the promise that a record is enough to get the same numbers again.
 *
 *   record → code check (the working tree must hold the recorded commit, patch and untracked files;
 *   else refuse, or --allow-dirty runs anyway, or --checkout runs the recorded commit + patch in a
 *   temporary git worktree) → the recorded config and seed (the backend pinned to the recorded one)
 *   → the split manifest rebuilt and its sample IDs checked against the recorded ones → training
 *   again (a new kind 'train' run whose parent is the original) → loss curve, evaluations and final
 *   metrics compared (exact on the same backend, CROSS_BACKEND_TOLERANCE across backends) → the
 *   verdict stored as a new kind 'reproduce' run linked to both.
 *
 * Runs live under CLINILORA_HOME (the pipeline's runs always go there).
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { currentBackend, initBackend, type BackendName } from '../backend/index.ts';
import { nativeEnabled, nativeStatus, setNativeEnabled } from '../backend/native.ts';
import type { CliniloraConfig } from '../config/defaults.ts';
import { defineConfig, validateConfig } from '../config/load.ts';
import { cliniloraHome, packageRoot } from '../data/index.ts';
import type { SplitManifest } from '../data/manifest.ts';
import { CliniloraError } from '../errors.ts';
import { checkoutRecorded } from '../tracker/checkout.ts';
import { diffRecords, findRun, runIds, runManifest } from '../tracker/compare.ts';
import { checkSource, type SourceCheck } from '../tracker/git.ts';
import { withRunParents } from '../tracker/lineage.ts';
import { openRun } from '../tracker/run.ts';
import { effectiveStatus, stepSeries, type ReproductionInfo, type RunRecord } from '../tracker/schema.ts';
import { readRun, runsDir } from '../tracker/store.ts';
import { compareManifests, compareRecords, CROSS_BACKEND_TOLERANCE, MAX_DIFFERENCES, setupChanges, type Comparison, type Tolerance } from '../tracker/verdict.ts';
import { backendSummary, datasetFor } from './resources.ts';
import { runTraining } from './train.ts';

export interface ReproduceOptions {
  /** Run the working tree even when it does not hold the recorded code (the verdict notes it). */
  allowDirty?: boolean;
  /** Run the recorded commit + patch in a temporary git worktree. */
  checkout?: boolean;
  /** Backend for the re-run (default: the recorded one). Another backend compares within a tolerance. */
  backend?: BackendName;
  /** Compare within this tolerance (default: exact on the same backend, CROSS_BACKEND_TOLERANCE across). */
  tolerance?: Tolerance;
  /** `key=value` overrides: a what-if (another seed...), never a faithful reproduction; the verdict says so. */
  set?: readonly string[];
  /** The repository holding the code (default: the package root). */
  gitDir?: string;
  /** Human lines about what happens. */
  onProgress?: (line: string) => void;
  /** Trainer progress display on stderr (default false). */
  progress?: boolean;
}

export interface ReproduceResult {
  /** 'interrupted': the re-run was stopped (SIGINT/SIGTERM); no verdict is stored. */
  status: 'reproduced' | 'not-reproduced' | 'interrupted';
  original: string;
  rerunId: string | null;
  verdictRunId: string | null;
  verdict: ReproductionInfo | null;
  source: SourceCheck;
}

const REPRODUCES = 'reproduces';

export async function reproduceRun(ref: string, opts: ReproduceOptions = {}): Promise<ReproduceResult> {
  const log = opts.onProgress ?? (() => {});
  const original = findRun(ref);
  if (original.kind !== 'train' || original.task === 'pretrain') {
    throw new CliniloraError('E_UNSUPPORTED', `run ${original.id} is a ${original.task} ${original.kind} run: reproduce re-runs LoRA training runs`, { field: 'kind', expected: "'train' (auditor, heart-risk, alpacare)", found: `${original.kind} (${original.task})` });
  }
  const status = effectiveStatus(original);
  if (status !== 'completed') {
    throw new CliniloraError('E_ARG', `run ${original.id} is ${status}: only a completed run has numbers to reproduce`, { field: 'status', expected: 'completed', found: status });
  }
  const origDir = join(runsDir(), original.id);
  const manifestA = recordedManifest(original);
  const gitDir = opts.gitDir ?? packageRoot();
  const patchPath = original.git.patchFile !== undefined ? join(origDir, original.git.patchFile) : null;
  const recordedPatch = patchPath !== null && existsSync(patchPath) ? readFileSync(patchPath, 'utf8') : null;
  const source = await checkSource(original.git, gitDir, recordedPatch);
  const notes: string[] = [];
  if (opts.checkout !== true) {
    if (!source.matches && opts.allowDirty !== true) {
      throw new CliniloraError('E_ARG', `the working tree (${gitDir}) does not hold the code run ${original.id} ran:\n  - ${source.problems.join('\n  - ')}`, {
        hint: 'pass --checkout to run the recorded commit (and its patch) in a temporary git worktree, or --allow-dirty to run this tree anyway',
      });
    }
    for (const p of source.problems) notes.push(`--allow-dirty: ${p}`);
  }
  const set = [...(opts.set ?? [])];
  if (set.length > 0) notes.push(`overrides applied: ${set.join(' ')} (a what-if, not a faithful reproduction)`);
  const recordedBackend = original.env.backend;
  const wanted = opts.backend ?? (recordedBackend?.name as BackendName | undefined);
  const compareBase = original.evals.some((e) => e.split.endsWith(':base'));

  let rerun: RunRecord | null = null;
  let manifestB: SplitManifest | null = null;
  let verdictSource: ReproductionInfo['source'] = 'working-tree';
  if (opts.checkout === true) {
    verdictSource = 'checkout';
    const r = await rerunInCheckout(original, gitDir, patchPath, set, wanted, compareBase, log, notes);
    if (r === 'interrupted') return { status: 'interrupted', original: original.id, rerunId: null, verdictRunId: null, verdict: null, source };
    rerun = r;
  } else {
    let config: CliniloraConfig = defineConfig(validateConfig(original.config, `run ${original.id}`), set);
    if (config.outDir !== null) {
      notes.push(`outDir ${config.outDir} redirected to the re-run's own directory (the original's files stay untouched)`);
      config = { ...config, outDir: null };
    }
    if (opts.backend !== undefined && config.backend !== 'auto' && config.backend !== opts.backend) config = { ...config, backend: opts.backend };
    else if (config.backend === 'auto' && wanted !== undefined) {
      // Pin 'auto' to the recorded backend (and wasm's thread count, fixed at its first start).
      const sameThreads = wanted === recordedBackend?.name && config.threads === null ? { threads: recordedBackend.threads } : {};
      try {
        await initBackend({ backend: wanted, ...sameThreads });
      } catch (e) {
        if (!(e instanceof CliniloraError) || opts.backend !== undefined) throw e;
        throw new CliniloraError(e.code, `the recorded backend '${wanted}' cannot start here: ${e.message}`, { hint: 'pass --backend <name> to re-run on another backend (compared within a tolerance)' });
      }
    }
    const data = await datasetFor(config, log);
    const pre = manifestA !== null ? compareManifests(manifestA, data.manifest) : null;
    if (pre !== null && pre.differences.length > 0) {
      log('the rebuilt split differs from the recorded sample IDs: not training');
      const cmp: Comparison = { differences: pre.differences, compared: { samples: pre.samples, steps: 0, evals: 0, metrics: 0 }, notes: [] };
      return storeVerdict(original, null, config as unknown as Record<string, unknown>, data.manifest, data.dir, cmp, null, verdictSource, notes, gitDir, source);
    }
    const t0 = Date.now();
    log(`re-running ${original.id} (${original.name}) with its config and seed ${config.seed}`);
    // The native matmul on or off as recorded (its sums run in another order than the backend's own).
    const nativeBefore = nativeEnabled();
    if (nativeStatus().loaded) setNativeEnabled(recordedBackend?.native === true);
    try {
      const r = await withRunParents([{ id: original.id, role: REPRODUCES }], () =>
        runTraining(config, { name: original.name, tags: ['rerun'], compareBase, progress: opts.progress ?? false, onProgress: log }),
      );
      if (r.status === 'interrupted') return { status: 'interrupted', original: original.id, rerunId: r.runId, verdictRunId: null, verdict: null, source };
      rerun = readRun(r.runId);
    } catch (e) {
      // The re-run failed: its record (status failed, with the error) is the newest run linked to the original.
      const failed = rerunsSince(original.id, t0)[0];
      if (failed === undefined) throw e;
      rerun = failed;
      notes.push(`the re-run failed: ${(e as Error).message.split('\n')[0] ?? ''}`);
    } finally {
      setNativeEnabled(nativeBefore);
    }
  }
  manifestB = runManifest(rerun).manifest;
  const sameBackend =
    recordedBackend !== null && rerun.env.backend !== null && rerun.env.backend.name === recordedBackend.name && (rerun.env.backend.native ?? false) === (recordedBackend.native ?? false);
  const tol = opts.tolerance ?? (sameBackend ? null : CROSS_BACKEND_TOLERANCE);
  const cmp = compareRecords(original, rerun, tol, { a: manifestA, b: manifestB });
  notes.push(...cmp.notes);
  return storeVerdict(original, rerun, rerun.config, manifestB, rerun.data?.dir ?? undefined, cmp, tol, verdictSource, notes, gitDir, source);
}

/** The original's split manifest, checked against the sha256 its record holds. */
function recordedManifest(r: RunRecord): SplitManifest | null {
  const { manifest, note } = runManifest(r);
  if (manifest === null) {
    if (note !== undefined) throw new CliniloraError('E_MISSING', `the recorded split manifest cannot be read: ${note}`, { field: 'data.manifestFile', hint: 'without it the sample IDs cannot be checked' });
    return null;
  }
  if (manifest.sha256 !== r.data!.manifestSha256) {
    throw new CliniloraError('E_FORMAT', 'the split manifest next to the record does not match its sha256 in the record', {
      file: join(runsDir(), r.id, r.data!.manifestFile),
      field: 'data.manifestSha256',
      expected: r.data!.manifestSha256,
      found: manifest.sha256,
    });
  }
  return manifest;
}

/** Runs linked to `originalId` as re-runs, started at or after `sinceMs`, newest first. */
function rerunsSince(originalId: string, sinceMs: number): RunRecord[] {
  const out: RunRecord[] = [];
  for (const id of runIds()) {
    try {
      const r = readRun(id);
      if (r.kind === 'train' && Date.parse(r.times.started) >= sinceMs - 1000 && r.parents.some((p) => p.id === originalId && p.role === REPRODUCES)) out.push(r);
    } catch {
      // unreadable records are `runs ls`'s business
    }
  }
  return out;
}

/**
 * The re-run in a temporary worktree at the recorded commit + patch, through that commit's own
 * `clinilora train` (a child process with CLINILORA_HOME here, so its record lands beside the original).
 */
async function rerunInCheckout(
  original: RunRecord, gitDir: string, patchPath: string | null, set: string[], backend: BackendName | undefined, compareBase: boolean,
  log: (l: string) => void, notes: string[],
): Promise<RunRecord | 'interrupted'> {
  log(`checking out ${original.git.commit ?? '?'}${original.git.patchFile !== undefined ? ' with the recorded patch' : ''} into a temporary worktree`);
  const co = await checkoutRecorded(gitDir, original.git, patchPath);
  notes.push(...co.notes);
  const tmp = mkdtempSync(join(tmpdir(), 'clinilora-reproduce-config-'));
  try {
    // The recorded (resolved) config as a file: YAML reads JSON. Named like the original, so is the re-run.
    const cfgFile = join(tmp, `${original.name.replace(/[^\w.-]/g, '_') || 'run'}.yaml`);
    writeFileSync(cfgFile, `${JSON.stringify(original.config, null, 2)}\n`);
    const config = original.config as { backend?: string; outDir?: string | null };
    const sets = [...set];
    if (config.outDir !== null && config.outDir !== undefined) {
      sets.push('outDir=null');
      notes.push(`outDir ${config.outDir} redirected to the re-run's own directory`);
    }
    const env: NodeJS.ProcessEnv = { ...process.env, CLINILORA_HOME: cliniloraHome(), CLINILORA_PARENTS: `${REPRODUCES}:${original.id}` };
    if (backend !== undefined) {
      if (config.backend === 'auto') {
        env.CLINILORA_BACKEND = backend;
        if (backend === original.env.backend?.name) env.CLINILORA_THREADS = String(original.env.backend.threads);
        env.CLINILORA_NATIVE = original.env.backend?.native === true ? '1' : '0';
      } else if (config.backend !== backend) sets.push(`backend=${backend}`);
    }
    const args = ['--import', 'tsx', join(co.dir, 'src', 'cli', 'main.ts'), 'train', cfgFile, '--quiet', ...(compareBase ? [] : ['--no-base-eval']), ...sets.flatMap((s) => ['--set', s])];
    const before = new Set(runIds());
    const t0 = Date.now();
    log(`re-running in ${co.dir}: clinilora train ${cfgFile}${sets.length > 0 ? ` --set ${sets.join(' --set ')}` : ''}`);
    const child = await runChild(process.execPath, args, co.dir, env, log);
    const id = /^run (\S+) (\w+)$/m.exec(child.stdout)?.[1] ?? runIds().find((x) => !before.has(x) && readRun(x).kind === 'train' && Date.parse(readRun(x).times.started) >= t0 - 1000);
    if (id === undefined) {
      throw new CliniloraError('E_IO', `the re-run in the checkout recorded no run (exit ${child.code}): ${child.stderr.trim().split('\n').slice(-3).join(' | ')}`, { file: co.dir });
    }
    const r = readRun(id);
    if (r.status === 'interrupted') return 'interrupted';
    if (child.code !== 0) notes.push(`the re-run exited with code ${child.code}: ${child.stderr.trim().split('\n').slice(-1)[0] ?? ''}`);
    return r;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
    await co.remove();
  }
}

function runChild(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv, log: (l: string) => void): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((res, rej) => {
    const child = spawn(cmd, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let partial = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => {
      const text = d.toString();
      stderr += text;
      const lines = (partial + text).split('\n');
      partial = lines.pop() ?? '';
      for (const l of lines) log(`  ${l}`);
    });
    // Ctrl-C reaches the child too (same process group); it writes a checkpoint and says interrupted.
    child.on('error', rej);
    child.on('close', (code) => res({ code, stdout, stderr }));
  });
}

/** Stores the verdict as a kind 'reproduce' run linked to the original (and the re-run). */
async function storeVerdict(
  original: RunRecord, rerun: RunRecord | null, config: Record<string, unknown>, manifest: SplitManifest | null, dataDir: string | undefined,
  cmp: Comparison, tol: Tolerance | null, source: ReproductionInfo['source'], notes: string[], gitDir: string, check: SourceCheck,
): Promise<ReproduceResult> {
  const seed = typeof config.seed === 'number' ? config.seed : original.seed;
  const backend = currentBackend();
  const run = await openRun({
    config: { ...config, task: original.task, seed },
    kind: 'reproduce',
    task: original.task,
    name: `reproduce-${original.name}`,
    seed,
    backend: rerun !== null ? rerun.env.backend : backend !== undefined ? backendSummary(backend) : null,
    parents: [{ id: original.id, role: REPRODUCES }, ...(rerun !== null ? [{ id: rerun.id, role: 'rerun' }] : [])],
    ...(manifest !== null ? { manifest } : {}),
    ...(dataDir !== undefined ? { dataDir } : {}),
    gitDir,
    heartbeatMs: 0,
  });
  try {
    // What differs in the setup: against the re-run, or (no re-run) against this record (config, data, code, machine).
    const setup = setupChanges(diffRecords(original, rerun ?? (run.record as RunRecord)));
    const reproduced = cmp.differences.length === 0 && rerun !== null;
    const verdict: ReproductionInfo = {
      of: original.id,
      rerun: rerun?.id ?? null,
      reproduced,
      mode: tol === null ? 'exact' : 'tolerance',
      tolerance: tol,
      source,
      compared: cmp.compared,
      firstDifference: cmp.differences[0] ?? null,
      differences: cmp.differences.slice(0, MAX_DIFFERENCES),
      differenceCount: cmp.differences.length,
      setup,
      notes,
    };
    run.setReproduction(verdict);
    const metrics: Record<string, number> = { reproduced: reproduced ? 1 : 0, differences: cmp.differences.length, steps_compared: cmp.compared.steps, samples_compared: cmp.compared.samples };
    if (rerun !== null) {
      const lossA = new Map(stepSeries(original).map((s) => [s.step, s.loss]));
      let max = 0;
      for (const s of stepSeries(rerun)) {
        const a = lossA.get(s.step);
        if (typeof a === 'number' && s.loss !== null) max = Math.max(max, Math.abs(s.loss - a));
      }
      metrics.max_abs_loss_diff = max;
    }
    run.finish('completed', { metrics });
    return { status: reproduced ? 'reproduced' : 'not-reproduced', original: original.id, rerunId: rerun?.id ?? null, verdictRunId: run.id, verdict, source: check };
  } catch (e) {
    run.finish('failed', { error: e });
    throw e;
  }
}
