/**
 * `clinilora train` end to end through a real process on a tiny budget (a tiny random base via the
 * `preset:` convention, 60 reports, 3 steps, 4 test samples), then `eval` on its adapter, and a
 * SIGTERM during training. Everything lands in a temporary CLINILORA_HOME.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { initBackend } from '../src/backend/index.ts';
import { parseBaseSpec } from '../src/pipeline/base.ts';
import { loadBase } from '../src/pipeline/base.ts';
import { loadLoraAdapter } from '../src/model/lora/peft-files.ts';
import { loraLayers } from '../src/model/lora/model.ts';
import type { RunRecord } from '../src/tracker/schema.ts';
import { Rng } from '../src/util/random.ts';

const repo = fileURLToPath(new URL('..', import.meta.url));
const home = mkdtempSync(join(tmpdir(), 'clinilora-cli-train-'));
export const TINY_BASE = 'preset:phi3-nano?hiddenSize=32&intermediateSize=64&numHiddenLayers=1&numAttentionHeads=2&numKeyValueHeads=2';
const TINY = [
  `model.base=${TINY_BASE}`, 'backend=wasm', 'data.n=60', 'data.maxLength=320', 'training.maxSteps=3', 'training.batchSize=2',
  'training.evalEvery=2', 'training.evalSamples=2', 'training.checkpointEvery=2', 'eval.n=4', 'eval.maxNewTokens=8', 'eval.batchSize=4',
].flatMap((s) => ['--set', s]);

function cli(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(repo, 'src/cli/main.ts'), ...args], {
    cwd: repo, env: { ...process.env, CLINILORA_HOME: home }, encoding: 'utf8', timeout: 80_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const record = (id: string): RunRecord => JSON.parse(readFileSync(join(home, 'experiments', 'runs', id, 'run.json'), 'utf8')) as RunRecord;
const sha = (file: string): string => createHash('sha256').update(readFileSync(file)).digest('hex');

let trainedId = '';

test('train: a complete run record, an adapter that loads, base vs adapter table', async () => {
  const r = cli(['train', 'auditor-nano', ...TINY]);
  assert.equal(r.status, 0, r.stderr);
  const id = /^run (\S+) completed$/m.exec(r.stdout)?.[1];
  assert.ok(id !== undefined, r.stdout);
  trainedId = id;
  assert.match(r.stdout, /base alone\s+base \+ adapter/);
  assert.match(r.stdout, /^accuracy\s/m);
  assert.match(r.stdout, /^time: total /m);
  assert.match(r.stderr, /WARNING: base preset:phi3-nano/);

  const rec = record(id);
  assert.equal(rec.status, 'completed');
  assert.equal(rec.kind, 'train');
  assert.equal(rec.seed, 42);
  assert.equal((rec.config as { model: { base: string } }).model.base, TINY_BASE);
  assert.ok(rec.env.backend !== null && rec.env.backend.name === 'wasm');
  assert.ok(rec.git.isRepo);
  assert.deepEqual(rec.steps.map((s) => s.step), [1, 2, 3]);
  for (const s of rec.steps) {
    assert.ok(typeof s.loss === 'number' && s.loss > 0 && Number.isFinite(s.lr) && (s.tokensPerSec ?? 0) > 0 && typeof s.gradNorm === 'number', JSON.stringify(s));
  }
  assert.deepEqual(rec.evals.filter((e) => e.split === 'validation').map((e) => e.step), [2, 3]);
  assert.ok(rec.evals.some((e) => e.split === 'test' && e.metrics.n === 4 && 'accuracy' in e.metrics));
  assert.ok(rec.evals.some((e) => e.split === 'test:base'));
  // Split manifest with sample IDs, copied next to run.json.
  assert.ok(rec.data !== null);
  const manifest = JSON.parse(readFileSync(join(home, 'experiments', 'runs', id, rec.data.manifestFile), 'utf8')) as { splits: Record<string, string[]>; sha256: string };
  assert.equal(manifest.sha256, rec.data.manifestSha256);
  assert.equal(manifest.splits.train!.length, rec.data.counts.train);
  // Metrics: adapter and base alone.
  const m = rec.metrics!;
  for (const k of ['accuracy', 'f1_weighted', 'unparseable_rate', 'base_accuracy', 'gen_tokens_per_sec', 'steps', 'final_loss']) assert.ok(k in m, `metric ${k}`);
  // Faithfulness exists only when some explanation cites a number (a random tiny base rarely does).
  if ('faithfulness' in m) assert.ok(m.faithfulness! >= 0 && m.faithfulness! <= 1, `faithfulness ${m.faithfulness}`);
  assert.equal(m.steps, 3);
  // Artifacts: every one exists under CLINILORA_HOME with the recorded sha256.
  const kinds = new Set(rec.artifacts.map((a) => a.kind));
  for (const k of ['checkpoint', 'adapter', 'predictions', 'eval-report']) assert.ok(kinds.has(k), `artifact kind ${k}`);
  for (const a of rec.artifacts) {
    const file = join(home, a.path);
    assert.ok(existsSync(file), a.path);
    assert.equal(sha(file), a.sha256, a.path);
  }
  const preds = readFileSync(join(home, 'experiments', 'runs', id, 'predictions-test-adapter.jsonl'), 'utf8').trim().split('\n');
  assert.equal(preds.length, 4);
  // The adapter loads on the same base (rebuilt from the recorded spec), and only there.
  await initBackend({ backend: 'wasm' });
  const adapterDir = join(home, 'experiments', 'runs', id, 'adapter');
  const cfg = JSON.parse(readFileSync(join(adapterDir, 'adapter_config.json'), 'utf8')) as { base_model_name_or_path: string; r: number };
  assert.match(cfg.base_model_name_or_path, /seed=42/);
  const model = loadBase(parseBaseSpec(cfg.base_model_name_or_path, 0));
  loadLoraAdapter(adapterDir, model, new Rng(1));
  assert.equal(loraLayers(model).length, 4);
  model.dispose();
});

test('eval on the trained run: a kind eval record with the predictions file, parent linked', () => {
  assert.ok(trainedId !== '');
  const r = cli(['eval', trainedId, '--n', '3', '--quiet']);
  assert.equal(r.status, 0, r.stderr);
  const id = /^run (\S+) completed$/m.exec(r.stdout)?.[1]!;
  const rec = record(id);
  assert.equal(rec.kind, 'eval');
  assert.equal(rec.status, 'completed');
  assert.deepEqual(rec.parents, [{ id: trainedId, role: 'adapter' }]);
  assert.equal(rec.metrics!.n, 3);
  assert.ok(rec.artifacts.some((a) => a.kind === 'predictions'));
  assert.equal(readFileSync(join(home, 'experiments', 'runs', id, 'predictions-test-adapter.jsonl'), 'utf8').trim().split('\n').length, 3);
});

test('bad input: a missing config file, a missing base, an unknown split, a checkpoint from another config', () => {
  const missing = cli(['train', join(home, 'nope.yaml')]);
  assert.equal(missing.status, 2);
  assert.match(missing.stderr, /config file not found/);
  const base = cli(['train', 'auditor-nano', '--set', 'model.base=/nonexistent/base']);
  assert.equal(base.status, 2);
  assert.match(base.stderr, /base model not found/);
  const split = cli(['eval', trainedId, '--split', 'dev']);
  assert.equal(split.status, 2);
  assert.match(split.stderr, /--split/);
  // The trained run's checkpoint, resumed under another learning rate: refused, nothing trained.
  const ckpts = join(home, 'experiments', 'runs', trainedId, 'checkpoints');
  const ck = join(ckpts, readdirSync(ckpts).sort()[0]!);
  const before = readdirSync(join(home, 'experiments', 'runs')).length;
  const other = cli(['train', 'auditor-nano', ...TINY, '--set', 'training.lr=0.5', '--resume', ck]);
  assert.notEqual(other.status, 0);
  assert.match(other.stderr, /config/i);
  const runs = readdirSync(join(home, 'experiments', 'runs'));
  assert.equal(runs.length, before + 1); // the attempt is recorded as a failed run
  const failed = runs.map(record).find((x) => x.status === 'failed');
  assert.ok(failed !== undefined && failed.error !== null);
});

test('SIGTERM during train: exit non-zero, record interrupted, a checkpoint exists', async () => {
  const child = spawn(process.execPath, ['--import', 'tsx', join(repo, 'src/cli/main.ts'), 'train', 'auditor-nano', ...TINY, '--set', 'training.maxSteps=400', '--set', 'training.checkpointEvery=1000', '--no-base-eval'], {
    cwd: repo, env: { ...process.env, CLINILORA_HOME: home }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const started = new Promise<void>((res) => {
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
      if (/step \d+\/400/.test(err) || /LoRA r=/.test(err)) res();
    });
  });
  await started;
  await new Promise((r) => setTimeout(r, 500));
  child.kill('SIGTERM');
  const code = await new Promise<number | null>((res) => child.on('close', (c) => res(c)));
  assert.equal(code, 3, err);
  const id = /^run (\S+) interrupted$/m.exec(out)?.[1];
  assert.ok(id !== undefined, out);
  const rec = record(id);
  assert.equal(rec.status, 'interrupted');
  assert.ok(rec.steps.length >= 1 && rec.steps.length < 400);
  const ckpts = readdirSync(join(home, 'experiments', 'runs', id, 'checkpoints'));
  assert.equal(ckpts.length, 1);
  assert.ok(existsSync(join(home, 'experiments', 'runs', id, 'checkpoints', ckpts[0]!, 'state.json')));
  assert.ok(rec.artifacts.some((a) => a.kind === 'checkpoint'));
  assert.ok(!existsSync(join(home, 'experiments', 'runs', id, 'adapter')));
});
