import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { configHash, defaultConfig, defineConfig, GENERATION_PRESETS, loadConfig, validateConfig } from '../src/config/index.ts';
import { CliniloraError } from '../src/errors.ts';

const dir = mkdtempSync(join(tmpdir(), 'clinilora-config-'));
function yamlFile(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

/** Runs fn, expects a CliniloraError, returns it. */
function catchError(fn: () => unknown): CliniloraError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof CliniloraError, `expected CliniloraError, got ${String(e)}`);
    return e;
  }
  assert.fail('expected an error');
}

test('an empty file gives the defaults with the default preset applied', () => {
  const { config } = loadConfig(yamlFile('empty.yaml', '# nothing\n'));
  const want = defaultConfig();
  Object.assign(want.eval, GENERATION_PRESETS.greedy);
  assert.deepEqual(config, want);
  assert.equal(config.seed, 42);
  assert.equal(config.training.epochs, 1);
  assert.equal(config.training.maxSteps, null);
  assert.deepEqual(defineConfig(), config);
});

test('layers: defaults < file < --set, untouched keys keep their defaults', () => {
  const p = yamlFile('layers.yaml', 'task: heart-risk\ntraining:\n  lr: 1.0e-3\n  batchSize: 2\nlora:\n  targetModules: [qkv_proj]\n');
  const { config, name, file } = loadConfig(p, { set: ['training.lr=2e-4', 'lora.targetModules=[o_proj, down_proj]', 'training.maxSteps=50', 'data.dir=/x/y'] });
  assert.equal(name, 'layers');
  assert.equal(file, p);
  assert.equal(config.task, 'heart-risk');
  assert.equal(config.training.lr, 2e-4); // --set beats the file
  assert.equal(config.training.batchSize, 2); // file beats the default
  assert.equal(config.training.gradAccum, defaultConfig().training.gradAccum);
  assert.deepEqual(config.lora.targetModules, ['o_proj', 'down_proj']);
  assert.equal(config.training.maxSteps, 50);
  assert.equal(config.data.dir, '/x/y');
  // --set of null clears a nullable field
  assert.equal(loadConfig(p, { set: ['training.epochs=null'] }).config.training.epochs, null);
});

test('a generation preset sits under the file and --set', () => {
  const p = yamlFile('preset.yaml', 'eval:\n  preset: auditor-seed\n  temperature: 0.3\n');
  const a = loadConfig(p).config.eval;
  assert.equal(a.temperature, 0.3);
  assert.equal(a.topP, 0.9);
  assert.equal(a.maxNewTokens, 400);
  assert.equal(a.repetitionPenalty, 1.2);
  const b = loadConfig(p, { set: ['eval.preset=greedy'] }).config.eval;
  assert.equal(b.preset, 'greedy');
  assert.equal(b.temperature, 0.3); // the file's explicit value still wins over the preset
  assert.equal(b.topP, 1);
});

test('an unknown key in the file names file, line, key path and suggests the near key', () => {
  const p = yamlFile('unknown.yaml', 'task: auditor\nseed: 1\ntraining:\n  epochs: 2\n  lrr: 0.1\n');
  const e = catchError(() => loadConfig(p));
  assert.equal(e.code, 'E_CONFIG');
  assert.equal(e.details.file, p);
  assert.equal(e.details.line, 5);
  assert.equal(e.details.field, 'training.lrr');
  assert.match(e.details.expected ?? '', /\blr\b/);
  assert.match(e.message, /did you mean 'training\.lr'/);
  assert.ok(e.message.includes(`${p}:5`));
});

test('an unknown top-level section is an error with its line', () => {
  const p = yamlFile('section.yaml', 'task: auditor\n\noptimizer:\n  lr: 1\n');
  const e = catchError(() => loadConfig(p));
  assert.equal(e.details.field, 'optimizer');
  assert.equal(e.details.line, 3);
});

test('a wrong type in the file names the line, expected and found', () => {
  const p = yamlFile('type.yaml', 'training:\n  epochs: 2\n  batchSize: four\n');
  const e = catchError(() => loadConfig(p));
  assert.equal(e.code, 'E_CONFIG');
  assert.equal(e.details.line, 3);
  assert.equal(e.details.field, 'training.batchSize');
  assert.match(e.details.expected ?? '', /integer >= 1/);
  assert.match(e.details.found ?? '', /four/);
  const q = yamlFile('enum.yaml', 'model:\n  quant: int4\n');
  const e2 = catchError(() => loadConfig(q));
  assert.equal(e2.details.field, 'model.quant');
  assert.match(e2.details.expected ?? '', /'nf4'/);
  const r = yamlFile('section-type.yaml', 'lora: 5\n');
  const e3 = catchError(() => loadConfig(r));
  assert.equal(e3.details.field, 'lora');
  assert.match(e3.details.expected ?? '', /mapping/);
  const s = yamlFile('range.yaml', 'lora:\n  loraDropout: 1.5\n');
  assert.equal(catchError(() => loadConfig(s)).details.field, 'lora.loraDropout');
});

test('several problems are reported together', () => {
  const p = yamlFile('many.yaml', 'seed: -1\ntraining:\n  lr: fast\nfoo: 1\n');
  const e = catchError(() => loadConfig(p));
  assert.match(e.message, /3 problems/);
  assert.ok(e.message.includes(`${p}:1 'seed'`));
  assert.ok(e.message.includes(`${p}:3 'training.lr'`));
  assert.ok(e.message.includes(`${p}:4 'foo'`));
});

test('invalid YAML names the line', () => {
  const p = yamlFile('bad.yaml', 'task: auditor\ntraining:\n  lr: [1, 2\n');
  const e = catchError(() => loadConfig(p));
  assert.equal(e.code, 'E_CONFIG');
  assert.equal(typeof e.details.line, 'number');
  assert.match(e.message, /invalid YAML/);
  const d = yamlFile('dup.yaml', 'seed: 1\nseed: 2\n');
  assert.match(catchError(() => loadConfig(d)).message, /invalid YAML/);
});

test('--set errors: wrong type, unknown key, below a value, malformed', () => {
  const p = yamlFile('ok.yaml', 'task: auditor\n');
  const e = catchError(() => loadConfig(p, { set: ['training.batchSize=2.5'] }));
  assert.equal(e.code, 'E_CONFIG');
  assert.equal(e.details.field, 'training.batchSize');
  assert.equal(e.details.file, '--set training.batchSize=2.5');
  assert.match(e.details.expected ?? '', /integer/);
  assert.match(e.details.found ?? '', /2\.5/);
  const u = catchError(() => loadConfig(p, { set: ['training.learningRate=1'] }));
  assert.equal(u.details.field, 'training.learningRate');
  assert.match(u.message, /unknown key/);
  assert.equal(catchError(() => loadConfig(p, { set: ['training.lr.x=1'] })).details.field, 'training.lr.x');
  assert.match(catchError(() => loadConfig(p, { set: ['training.lr'] })).message, /key\.path=value/);
  assert.equal(catchError(() => loadConfig(p, { set: ['lora=3'] })).details.field, 'lora');
  // a string where a number belongs: '1e-4x' parses as a string
  assert.match(catchError(() => loadConfig(p, { set: ['training.lr=1e-4x'] })).details.found ?? '', /string/);
});

test('a missing config file names the path and lists the shipped configs', () => {
  const missing = join(dir, 'nope.yaml');
  const e = catchError(() => loadConfig(missing));
  assert.equal(e.code, 'E_MISSING');
  assert.equal(e.details.file, missing);
  assert.ok(e.message.includes(missing));
  assert.match(e.details.hint ?? '', /auditor-nano/);
});

test('a shipped config loads by bare name', () => {
  assert.equal(loadConfig('auditor-nano').config.task, 'auditor');
});

test('configHash: sha256 of canonical JSON, stable under key order, sensitive to values', () => {
  const c = defineConfig({ task: 'alpacare', training: { lr: 3e-4 } });
  const reorder = (v: unknown): unknown =>
    v !== null && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).reverse().map(([k, x]) => [k, reorder(x)]))
      : v;
  const r = reorder(c) as Record<string, unknown>;
  assert.notEqual(JSON.stringify(r), JSON.stringify(c));
  assert.equal(configHash(r), configHash(c));
  // independent canonical form: sort keys at every level
  const sorted = (v: unknown): unknown =>
    v !== null && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.keys(v as object).sort().map((k) => [k, sorted((v as Record<string, unknown>)[k])]))
      : v;
  assert.equal(configHash(c), createHash('sha256').update(JSON.stringify(sorted(c))).digest('hex'));
  assert.notEqual(configHash(defineConfig({ task: 'alpacare', training: { lr: 3.1e-4 } })), configHash(c));
});

test('validateConfig: a complete config passes; missing, unknown and mistyped keys fail', () => {
  const c = defineConfig();
  assert.deepEqual(validateConfig(structuredClone(c)), c);
  const missing = structuredClone(c) as unknown as Record<string, Record<string, unknown>>;
  delete missing.training?.lr;
  assert.equal(catchError(() => validateConfig(missing, 'run.json')).details.field, 'training.lr');
  const extra = { ...structuredClone(c), extra: 1 };
  assert.equal(catchError(() => validateConfig(extra)).details.field, 'extra');
  const typed = structuredClone(c);
  (typed.model as Record<string, unknown>).quant = 'int3';
  assert.equal(catchError(() => validateConfig(typed)).details.field, 'model.quant');
});

test('defineConfig rejects unknown keys and wrong types like a file', () => {
  const bad = { training: { lr: 'x' } } as unknown as Parameters<typeof defineConfig>[0];
  assert.equal(catchError(() => defineConfig(bad)).details.field, 'training.lr');
  const unk = { lora: { rank: 4 } } as unknown as Parameters<typeof defineConfig>[0];
  assert.equal(catchError(() => defineConfig(unk)).details.field, 'lora.rank');
});
