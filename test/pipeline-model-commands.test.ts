/**
 * The model commands on an adapter trained in-process by runTraining (tiny random base): `generate`
 * with a JSON report and with broken ones, `chat` on piped stdin ending in `quit`, `merge` (the merged
 * directory gives base + adapter's logits), `export gguf` (a file openGguf reads), and an adapter
 * refused by a base of another shape. Commands run as real processes; CLINILORA_HOME is a temp dir.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tf } from '../src/backend/tf.ts';
import { defineConfig } from '../src/config/load.ts';
import { openGguf } from '../src/io/gguf.ts';
import { loadPhi3 } from '../src/model/checkpoint.ts';
import { loraLayers } from '../src/model/lora/model.ts';
import { loadModel } from '../src/pipeline/resources.ts';
import { runTraining } from '../src/pipeline/train.ts';

const repo = fileURLToPath(new URL('..', import.meta.url));
const home = mkdtempSync(join(tmpdir(), 'clinilora-pipeline-model-'));
process.env.CLINILORA_HOME = home;
const TINY_BASE = 'preset:phi3-nano?hiddenSize=32&intermediateSize=64&numHiddenLayers=1&numAttentionHeads=2&numKeyValueHeads=2';

function cli(args: string[], input?: string): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(repo, 'src/cli/main.ts'), ...args], {
    cwd: repo, env: { ...process.env, CLINILORA_HOME: home, CLINILORA_BACKEND: 'wasm' }, encoding: 'utf8', timeout: 60_000, ...(input !== undefined ? { input } : {}),
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

let adapterDir = '';
let runId = '';
let report: Record<string, number> = {};

before(async () => {
  const config = defineConfig({
    task: 'auditor', backend: 'wasm', model: { base: TINY_BASE, quant: 'none' }, lora: { r: 4, loraAlpha: 8, loraDropout: 0, targetModules: ['qkv_proj', 'o_proj', 'gate_up_proj', 'down_proj'] },
    data: { n: 60, maxLength: 320 }, training: { maxSteps: 2, batchSize: 2, lr: 5e-2, warmupRatio: 0, evalEvery: 2, evalSamples: 2, checkpointEvery: null },
    eval: { n: 2, maxNewTokens: 4, batchSize: 2 },
  });
  const r = await runTraining(config, { progress: false, handleSignals: false, compareBase: false });
  assert.equal(r.status, 'completed');
  adapterDir = r.adapterDir!;
  runId = r.runId;
  const test = readFileSync(join(home, 'experiments', 'runs', runId, 'manifest.json'), 'utf8');
  assert.ok(test.length > 0);
  const preds = readFileSync(join(home, 'experiments', 'runs', runId, 'predictions-test-adapter.jsonl'), 'utf8').trim().split('\n');
  assert.equal(preds.length, 2);
  const ds = JSON.parse(readFileSync(join(home, 'experiments', 'runs', runId, 'run.json'), 'utf8')) as { data: { dir: string } };
  const line = readFileSync(join(ds.data.dir, 'test.jsonl'), 'utf8').split('\n')[0]!;
  report = (JSON.parse(line) as { meta: { report: Record<string, number> } }).meta.report;
});

test('generate: a JSON report file → an answer and the parsed category beside the reference', () => {
  const file = join(home, 'report.json');
  writeFileSync(file, JSON.stringify(report));
  const r = cli(['generate', '--adapter', adapterDir, '--file', file, '--set', 'eval.maxNewTokens=5']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /parsed category: .+ \(rule-based reference: .+\)/);
  // Same through stdin, with the run id instead of the directory.
  const s = cli(['generate', '--adapter', runId, '--set', 'eval.maxNewTokens=5'], JSON.stringify(report));
  assert.equal(s.status, 0, s.stderr);
  assert.equal(s.stdout, r.stdout);
});

test('generate: a report that is not JSON, or misses a key, is a clear error naming it', () => {
  const notJson = cli(['generate', '--adapter', adapterDir, '--task', 'auditor'], '{"auc": 0.8,');
  assert.equal(notJson.status, 2);
  assert.match(notJson.stderr, /<stdin>: the report is not JSON/);
  const { drift: _drift, ...missing } = report;
  const file = join(home, 'missing.json');
  writeFileSync(file, JSON.stringify(missing));
  const m = cli(['generate', '--adapter', adapterDir, '--task', 'auditor', '--file', file]);
  assert.equal(m.status, 2);
  assert.match(m.stderr, /missing\.json 'drift': report is missing the key 'drift'/);
});

test('chat: piped questions, quit leaves, the safety disclaimer is on every answer', () => {
  const r = cli(['chat', '--adapter', adapterDir, '--set', 'eval.maxNewTokens=4'], 'What is asthma?\n\nHow much ibuprofen can I take?\nquit\nnever read\n');
  assert.equal(r.status, 0, r.stderr);
  const answers = r.stdout.split('\n').filter((l) => l.startsWith('assistant: '));
  assert.equal(answers.length, 2, r.stdout);
  assert.equal((r.stdout.match(/not a diagnosis or medical advice/g) ?? []).length, 2, r.stdout);
  assert.match(r.stdout, /bye\n$/);
});

test('merge: the merged HF directory gives the logits of base + adapter; an existing --out is refused', () => {
  const out = join(home, 'merged');
  const r = cli(['merge', '--adapter', adapterDir, '--out', out]);
  assert.equal(r.status, 0, r.stderr);
  const again = cli(['merge', '--adapter', adapterDir, '--out', out]);
  assert.equal(again.status, 2);
  assert.match(again.stderr, /the output exists; nothing was written/);

  const ids = [[1, 450, 3681, 338, 263, 1243, 32007, 32001]];
  const merged = loadPhi3(out);
  const withAdapter = loadModel(TINY_BASE, 42, { adapterDir });
  const bare = loadModel(TINY_BASE, 42);
  assert.ok(loraLayers(withAdapter.model).length > 0);
  const [a, b, c] = [merged, withAdapter.model, bare.model].map((m) => tf.tidy(() => m.forward(ids).dataSync() as Float32Array));
  let diff = 0;
  let moved = 0;
  for (let i = 0; i < a!.length; i++) {
    diff = Math.max(diff, Math.abs(a![i]! - b![i]!));
    moved = Math.max(moved, Math.abs(b![i]! - c![i]!));
  }
  assert.ok(diff < 1e-4, `merged vs base+adapter max |Δlogit| ${diff}`);
  assert.ok(moved > 10 * diff, `the adapter changes the logits (${moved}) more than merging does (${diff})`);
  for (const m of [merged, withAdapter.model, bare.model]) m.dispose();
});

test('export gguf: a file openGguf reads, with the merged model\'s tensors', async () => {
  const out = join(home, 'model.gguf');
  const r = cli(['export', 'gguf', '--adapter', adapterDir, '--out', out, '--type', 'Q8_0']);
  assert.equal(r.status, 0, r.stderr);
  const g = await openGguf(out);
  const names = g.tensors.map((t) => t.name);
  assert.ok(names.includes('token_embd.weight') && names.includes('blk.0.attn_qkv.weight'), names.join(', '));
  assert.deepEqual(g.metadata['general.architecture'], { type: 'string', value: 'phi3' });
  const bad = cli(['export', 'gguf', '--out', join(home, 'x.gguf')]);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /exactly one of --adapter and --model/);
  assert.ok(!existsSync(join(home, 'x.gguf')));
});

test('an adapter for another base (shape mismatch) is refused, naming the adapter file', () => {
  const other = 'preset:phi3-nano?hiddenSize=48&intermediateSize=64&numHiddenLayers=1&numAttentionHeads=2&numKeyValueHeads=2';
  const r = cli(['generate', '--adapter', adapterDir, '--base', other], JSON.stringify(report));
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /adapter does not fit this base/);
  assert.match(r.stderr, /adapter_model\.safetensors/);
});
