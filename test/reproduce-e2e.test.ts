/**
 * `clinilora reproduce` end to end, through real processes and a real git repository: the project's
 * files are copied into a temporary repository (so its commits and dirt are ours to change), a tiny
 * training run is recorded there with uncommitted changes (staged and unstaged), then:
 *   - reproduced in place: exactly the same curve and metrics, verdict stored, lineage linked;
 *   - a changed seed: detected (sample IDs, or with the data pinned, the loss at step 1) and explained;
 *   - a changed commit: refused, naming both commits and the patch difference;
 *   - --checkout: the recorded commit + patch in a temporary worktree reproduces exactly.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, test } from 'node:test';
import type { RunRecord } from '../src/tracker/schema.ts';
import { repoRoot } from './tracker-helpers.ts';

const TINY_BASE = 'preset:phi3-nano?hiddenSize=32&intermediateSize=64&numHiddenLayers=1&numAttentionHeads=2&numKeyValueHeads=2';
const TINY = [
  `model.base=${TINY_BASE}`, 'backend=wasm', 'threads=1', 'data.n=60', 'data.maxLength=320', 'training.maxSteps=3', 'training.batchSize=2',
  'training.evalEvery=2', 'training.evalSamples=2', 'eval.n=3', 'eval.maxNewTokens=6', 'eval.batchSize=3', 'lora.loraDropout=0.1',
].flatMap((s) => ['--set', s]);

const GIT_ENV = { GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@x', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@x' };
const git = (cwd: string, ...args: string[]): string => execFileSync('git', args, { cwd, encoding: 'utf8', env: { ...process.env, ...GIT_ENV } }).trim();

// <tmp>/repo: the project's source files in a fresh repository; <tmp>/node_modules: the packages.
const tmp = mkdtempSync(join(tmpdir(), 'clinilora-repro-e2e-'));
const repo = join(tmp, 'repo');
const home = join(tmp, 'home');
mkdirSync(home);
symlinkSync(join(repoRoot, 'node_modules'), join(tmp, 'node_modules'), 'dir');
const KEEP = /^(src\/|data\/|experiments\/configs\/|package\.json$|package-lock\.json$|tsconfig\.json$|\.gitignore$)/;
for (const f of git(repoRoot, 'ls-files', '-co', '--exclude-standard').split('\n')) {
  if (!KEEP.test(f) || !existsSync(join(repoRoot, f))) continue;
  mkdirSync(dirname(join(repo, f)), { recursive: true });
  copyFileSync(join(repoRoot, f), join(repo, f));
}
git(repo, 'init', '-q', '-b', 'trunk');
git(repo, 'add', '-A');
git(repo, 'commit', '-q', '-m', 'the project');
const firstCommit = git(repo, 'rev-parse', 'HEAD');
after(() => rmSync(tmp, { recursive: true, force: true }));

function cli(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
    cwd: repo, env: { ...process.env, CLINILORA_HOME: home, CLINILORA_PARENTS: '' }, encoding: 'utf8', timeout: 120_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
const record = (id: string): RunRecord => JSON.parse(readFileSync(join(home, 'experiments', 'runs', id, 'run.json'), 'utf8')) as RunRecord;
const verdictId = (out: string): string => /^verdict recorded as run (\S+)$/m.exec(out)?.[1] ?? assert.fail(out);
const curve = (r: RunRecord): [number, number | null, number, number | null | undefined][] => r.steps.map((s) => [s.step, s.loss, s.lr, s.gradNorm]);

let original: RunRecord;

test('a run recorded on a dirty tree: the patch holds staged and unstaged changes', () => {
  // An unstaged edit of a tracked source file and a staged new file: both belong to the code that ran.
  writeFileSync(join(repo, 'src', 'errors.ts'), `${readFileSync(join(repo, 'src', 'errors.ts'), 'utf8')}\n// an uncommitted edit\n`);
  writeFileSync(join(repo, 'src', 'staged-note.ts'), 'export const NOTE = 1;\n');
  git(repo, 'add', 'src/staged-note.ts');
  const r = cli(['train', 'auditor-nano', ...TINY, '--no-base-eval', '--quiet']);
  assert.equal(r.status, 0, r.stderr);
  const id = /^run (\S+) completed$/m.exec(r.stdout)?.[1] ?? assert.fail(r.stdout);
  original = record(id);
  assert.equal(original.git.commit, firstCommit);
  assert.equal(original.git.dirty, true);
  const patch = readFileSync(join(home, 'experiments', 'runs', id, original.git.patchFile!), 'utf8');
  assert.match(patch, /\+\/\/ an uncommitted edit/);
  assert.match(patch, /\+export const NOTE = 1;/);
  assert.equal(original.steps.length, 3);
});

test('reproduce in place: the same curve and metrics exactly; the verdict run links the original and the re-run', () => {
  const r = cli(['reproduce', original.id, '--quiet']);
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /^REPRODUCED exactly/m);
  const v = record(verdictId(r.stdout));
  assert.equal(v.kind, 'reproduce');
  assert.equal(v.reproduction?.reproduced, true);
  assert.equal(v.reproduction?.mode, 'exact');
  const rerun = record(v.reproduction!.rerun!);
  assert.deepEqual(v.parents, [{ id: original.id, role: 'reproduces' }, { id: rerun.id, role: 'rerun' }]);
  assert.deepEqual(rerun.parents, [{ id: original.id, role: 'reproduces' }]);
  // Checked here from the two records, not from the verdict: bit-identical losses, lr, grad norms.
  assert.deepEqual(curve(rerun), curve(original));
  assert.deepEqual(rerun.evals.map((e) => [e.step, e.split, e.metrics.loss ?? e.metrics.accuracy]), original.evals.map((e) => [e.step, e.split, e.metrics.loss ?? e.metrics.accuracy]));
  assert.equal(rerun.metrics?.final_loss, original.metrics?.final_loss);
  assert.equal(rerun.data?.manifestSha256, original.data?.manifestSha256);
  assert.equal(v.reproduction?.compared.steps, 3);
  assert.equal(v.reproduction?.compared.samples, original.data!.counts.train! + original.data!.counts.validation! + original.data!.counts.test!);
});

test('a changed seed is detected and explained: sample IDs first, and with the data pinned, the loss at step 1', () => {
  const ids = cli(['reproduce', original.id, '--quiet', '--set', 'seed=43']);
  assert.equal(ids.status, 4, ids.stdout + ids.stderr);
  assert.match(ids.stdout, /^NOT REPRODUCED/m);
  assert.match(ids.stdout, /^first difference: sample ID samples\.train\[0\]: recorded \S+, re-run \S+/m);
  assert.match(ids.stdout, /^ {2}config seed: 42 → 43$/m);
  const v1 = record(verdictId(ids.stdout));
  assert.equal(v1.reproduction?.rerun, null, 'no training on another split');

  const pinned = cli(['reproduce', original.id, '--quiet', '--set', 'seed=43', '--set', `data.dir=${original.data!.dir!}`]);
  assert.equal(pinned.status, 4, pinned.stdout + pinned.stderr);
  const first = original.steps[0]!;
  assert.match(pinned.stdout, new RegExp(`^first difference: step ${first.step} loss: recorded ${String(first.loss).replace('.', '\\.')}, re-run \\d`, 'm'));
  assert.match(pinned.stdout, /^ {2}config seed: 42 → 43$/m);
  const v2 = record(verdictId(pinned.stdout));
  assert.deepEqual(v2.reproduction?.firstDifference && [v2.reproduction.firstDifference.where, v2.reproduction.firstDifference.step, v2.reproduction.firstDifference.key], ['step', first.step, 'loss']);
  assert.equal(v2.metrics?.reproduced, 0);
});

let secondCommit = '';

test('a changed commit is refused, naming both commits and the patch difference', () => {
  git(repo, 'checkout', '-q', '--', '.');
  git(repo, 'rm', '-q', '--cached', 'src/staged-note.ts');
  git(repo, 'clean', '-qfx', 'src');
  writeFileSync(join(repo, 'src', 'errors.ts'), `${readFileSync(join(repo, 'src', 'errors.ts'), 'utf8')}\n// a committed edit\n`);
  git(repo, 'commit', '-qam', 'second');
  secondCommit = git(repo, 'rev-parse', 'HEAD');
  const r = cli(['reproduce', original.id]);
  assert.equal(r.status, 2, r.stdout + r.stderr);
  assert.match(r.stderr, new RegExp(`recorded commit ${firstCommit} \\(trunk\\), the working tree is at ${secondCommit} \\(trunk\\); HEAD is 1 commit\\(s\\) ahead and 0 behind it, files changed since: src/errors\\.ts`));
  assert.match(r.stderr, /uncommitted changes differ from the recorded ones \(recorded patch: sha256 \w+.*now: none\); files changed then: src\/errors\.ts, src\/staged-note\.ts, now: none/);
  assert.match(r.stderr, /--checkout/);
  assert.equal(cli(['reproduce', original.id, '--checkout', '--allow-dirty']).status, 2, 'the two flags exclude each other');
});

test('--checkout runs the recorded commit + patch in a temporary worktree and reproduces exactly', () => {
  const r = cli(['reproduce', original.id, '--checkout', '--quiet']);
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /^REPRODUCED exactly/m);
  assert.match(r.stdout, /code from the recorded commit \(temporary worktree\)/);
  const v = record(verdictId(r.stdout));
  assert.equal(v.reproduction?.source, 'checkout');
  const rerun = record(v.reproduction!.rerun!);
  // The re-run ran the recorded code: its own record says so (same commit, same patch).
  assert.equal(rerun.git.commit, firstCommit);
  assert.equal(rerun.git.patchSha256, original.git.patchSha256);
  assert.deepEqual(rerun.parents, [{ id: original.id, role: 'reproduces' }]);
  assert.deepEqual(curve(rerun), curve(original));
  assert.equal(v.git.commit, secondCommit, 'the verdict was made by the current code');
  // The worktree is gone and unregistered.
  assert.equal(git(repo, 'worktree', 'list').split('\n').length, 1);
  assert.equal(git(repo, 'status', '--porcelain'), '');
});
