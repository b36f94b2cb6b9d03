/**
 * loadPhi3 / savePhi3 on real files in a temp dir (tiny GQA config, cpu backend): float round trips
 * (F32 exact, F16/BF16 equal to the rounded weights), quantize-on-load equal bit for bit to
 * quantizeLinear on the same weights, shards, bitsandbytes records, every bad-input error.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, truncateSync, unlinkSync, writeFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend } from '../src/backend/index.ts';
import { CliniloraError } from '../src/errors.ts';
import { getPreset, configToHf, type PhiConfig } from '../src/model/config.ts';
import { Phi3ForCausalLM } from '../src/model/phi3.ts';
import { loadPhi3, savePhi3, quantizeRows, memoryRows, phi3Tensors } from '../src/model/checkpoint.ts';
import { openCheckpoint, writeCheckpoint } from '../src/io/hf-checkpoint.ts';
import { fromFloat32, toFloat32, type RawTensor } from '../src/io/tensor.ts';
import { quantizeLinear, type QuantizeLinearOptions } from '../src/kernels/quant-linear.ts';
import type { Linear } from '../src/kernels/linear.ts';
import { NF4Linear } from '../src/kernels/nf4-linear.ts';
import { Int8Linear } from '../src/kernels/int8-linear.ts';
import { Rng } from '../src/util/random.ts';
import { testWeights } from './model-reference.ts';

before(async () => {
  await initBackend({ backend: 'cpu' });
});
const root = mkdtempSync(join(tmpdir(), 'clinilora-ckpt-'));
after(() => rmSync(root, { recursive: true, force: true }));
let dirCount = 0;
const freshDir = (tag: string) => join(root, `${tag}-${dirCount++}`);

const c: PhiConfig = {
  ...getPreset('phi3-nano'),
  vocabSize: 64,
  hiddenSize: 64,
  intermediateSize: 96,
  numHiddenLayers: 2,
  numAttentionHeads: 4,
  numKeyValueHeads: 2,
};
const W = testWeights(c, 7, 0.2);
const source = (n: string) => W.get(n)!;
const ids = [
  [5, 12, 7, 30, 2, 19, 8, 44],
  [9, 3, 25, 14, 31, 6, 22, 50],
];

function logits(m: Phi3ForCausalLM): Float32Array {
  const l = m.forward(ids);
  const d = new Float32Array(l.dataSync());
  l.dispose();
  return d;
}

function floatModel(config = c): Phi3ForCausalLM {
  return Phi3ForCausalLM.fromWeights(config, source);
}

/** The packed state of a quantized layer, for exact comparison. */
function packed(l: Linear): unknown {
  if (l instanceof NF4Linear) return { kind: l.kind, q: l.q };
  if (l instanceof Int8Linear) return { kind: l.kind, q: l.q, threshold: l.threshold };
  const w = l.weight();
  const d = Array.from(w.dataSync());
  w.dispose();
  return { kind: l.kind, d };
}

function expectError(f: () => unknown, code: string, ...needles: string[]): CliniloraError {
  try {
    f();
  } catch (e) {
    assert.ok(e instanceof CliniloraError, `not a CliniloraError: ${String(e)}`);
    assert.equal(e.code, code, e.message);
    for (const n of needles) assert.ok(e.message.includes(n), `message lacks ${JSON.stringify(n)}:\n${e.message}`);
    return e;
  }
  assert.fail('no error thrown');
}

test('F32 round trip: identical logits; tensors and config as namedWeights / configToHf', () => {
  const m = floatModel();
  const dir = freshDir('f32');
  const res = savePhi3(dir, m);
  assert.deepEqual(res.files, ['config.json', 'model.safetensors']);
  assert.deepEqual(readdirSync(dir).sort(), ['config.json', 'model.safetensors']);
  const ck = openCheckpoint(dir);
  assert.deepEqual(ck.names().sort(), [...m.namedWeights()].map(([n]) => n).sort());
  assert.deepEqual(ck.info('model.layers.1.mlp.gate_up_proj.weight').shape, [192, 64]);
  assert.equal(ck.info('model.embed_tokens.weight').dtype, 'F32');
  ck.close();
  assert.deepEqual(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')), JSON.parse(JSON.stringify({ ...configToHf(c), torch_dtype: 'float32' })));
  const loaded = loadPhi3(dir);
  assert.deepEqual(loaded.config, { ...c, torchDtype: 'float32' });
  assert.ok(loaded.linearNames().every((n) => loaded.getLinear(n).kind === 'float'));
  assert.deepEqual(logits(loaded), logits(m));
  loaded.dispose();
  m.dispose();
});

test('F16 / BF16 files: every weight equals the rounded original; the table keeps its half dtype', () => {
  const m = floatModel();
  for (const [dtype, storage] of [['F16', 'float16'], ['BF16', 'bfloat16']] as const) {
    const dir = freshDir(dtype);
    savePhi3(dir, m, { dtype });
    const loaded = loadPhi3(dir);
    assert.equal(loaded.embedTokens.storage, storage);
    assert.equal(loaded.embedTokens.bytes(), c.vocabSize * c.hiddenSize * 2);
    const got = new Map([...loaded.namedWeights()].map(([n, d]) => [n, d]));
    for (const [name, d, shape] of m.namedWeights()) {
      const want = toFloat32(fromFloat32(d, shape, dtype));
      assert.deepEqual(got.get(name), want, `${dtype} ${name}`);
    }
    const f32 = loadPhi3(dir, { embeddingStorage: 'float32' });
    assert.equal(f32.embedTokens.storage, 'float32');
    assert.deepEqual(logits(f32), logits(loaded));
    f32.dispose();
    loaded.dispose();
  }
  m.dispose();
});

test('quantize on load equals quantizeLinear on the same weights, bit for bit (NF4, NF4+dq, int8)', () => {
  const m = floatModel();
  const dir = freshDir('q');
  savePhi3(dir, m);
  const ref = logits(m);
  const cases: Array<QuantizeLinearOptions & { quant: 'nf4' | 'int8' }> = [
    { quant: 'nf4' },
    { quant: 'nf4', doubleQuant: true },
    { quant: 'int8', threshold: 6 },
    { quant: 'int8', threshold: 0 },
  ];
  for (const q of cases) {
    const loaded = loadPhi3(dir, { ...q, skipModules: [] }); // every linear, lm_head too
    const inMemory = Phi3ForCausalLM.fromWeights(c, source, { linearFactory: (n, w, o, i) => quantizeLinear(w, o, i, { ...q, name: n }) });
    for (const n of loaded.linearNames()) {
      assert.equal(loaded.getLinear(n).kind, q.quant);
      assert.deepEqual(packed(loaded.getLinear(n)), packed(inMemory.getLinear(n)), `${JSON.stringify(q)} ${n}`);
    }
    const got = logits(loaded);
    assert.deepEqual(got, logits(inMemory));
    assert.notDeepEqual(got, ref); // quantization did happen
    loaded.dispose();
    inMemory.dispose();
  }
  m.dispose();
});

test('quantizeRows in small chunks equals quantizeLinear (partial blocks, odd sizes, double quant)', () => {
  const rng = new Rng(3);
  for (const [rows, cols] of [[9, 48], [129, 3], [5, 64], [3, 100], [7, 1]] as const) {
    const w = rng.fillNormal(new Float32Array(rows * cols), 1);
    for (const q of [{ quant: 'nf4' }, { quant: 'nf4', doubleQuant: true }, { quant: 'int8', threshold: 6 }, { quant: 'none' }] as const) {
      const chunked = quantizeRows(memoryRows(w, [rows, cols]), { ...q, chunkElements: 1 });
      assert.deepEqual(packed(chunked), packed(quantizeLinear(w, rows, cols, q)), `${rows}x${cols} ${JSON.stringify(q)}`);
      chunked.dispose();
    }
  }
});

test('sharded checkpoint (small maxShardBytes) loads with identical logits', () => {
  const m = floatModel();
  const dir = freshDir('shards');
  const res = savePhi3(dir, m, { maxShardBytes: 40_000 });
  const shards = res.files.filter((f) => /^model-\d{5}-of-\d{5}\.safetensors$/.test(f));
  assert.ok(shards.length >= 3, `only ${shards.length} shards`);
  for (const s of shards) assert.ok(statSync(join(dir, s)).size < 40_000 + 70_000); // one tensor may overflow
  assert.ok(existsSync(join(dir, 'model.safetensors.index.json')));
  const loaded = loadPhi3(dir);
  assert.deepEqual(logits(loaded), logits(m));
  const nf4 = loadPhi3(dir, { quant: 'nf4', skipModules: [] });
  assert.equal(nf4.getLinear('lm_head').kind, 'nf4');
  loaded.dispose();
  nf4.dispose();
  m.dispose();
});

test('tied embeddings: no lm_head tensor is written; the head is read from the table', () => {
  const tied: PhiConfig = { ...c, tieWordEmbeddings: true };
  const m = floatModel(tied);
  const dir = freshDir('tied');
  savePhi3(dir, m);
  const ck = openCheckpoint(dir);
  assert.equal(ck.has('lm_head.weight'), false);
  ck.close();
  const loaded = loadPhi3(dir);
  assert.deepEqual(logits(loaded), logits(m));
  const nf4 = loadPhi3(dir, { quant: 'nf4', skipModules: [] });
  assert.deepEqual(packed(nf4.getLinear('lm_head')), packed(quantizeLinear(W.get('model.embed_tokens.weight')!, c.vocabSize, c.hiddenSize, { quant: 'nf4' })));
  loaded.dispose();
  nf4.dispose();
  m.dispose();
});

test('bitsandbytes records: a quantized save loads as stored (NF4+dq, int8), with quantization_config', () => {
  const m = floatModel();
  const src = freshDir('src');
  savePhi3(src, m);
  for (const q of [{ quant: 'nf4', doubleQuant: true }, { quant: 'int8', threshold: 4 }] as const) {
    const qm = loadPhi3(src, { ...q, skipModules: [] });
    const dir = freshDir(`bnb-${q.quant}`);
    savePhi3(dir, qm, { quantized: true });
    const cfg = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
    assert.equal(cfg.quantization_config.quant_method, 'bitsandbytes');
    assert.equal(cfg.quantization_config.load_in_4bit, q.quant === 'nf4');
    assert.deepEqual(cfg.quantization_config.llm_int8_skip_modules, []);
    const ck = openCheckpoint(dir);
    const name = 'model.layers.0.self_attn.qkv_proj';
    if (q.quant === 'nf4') {
      assert.equal(ck.info(`${name}.weight`).dtype, 'U8');
      assert.ok(ck.has(`${name}.weight.nested_absmax`) && ck.has(`${name}.weight.quant_state.bitsandbytes__nf4`));
      assert.equal(cfg.quantization_config.bnb_4bit_use_double_quant, true);
      const state = JSON.parse(new TextDecoder().decode(ck.read(`${name}.weight.quant_state.bitsandbytes__nf4`).data));
      assert.deepEqual([state.quant_type, state.shape, state.dtype], ['nf4', [128, 64], 'float32']);
    } else {
      assert.equal(ck.info(`${name}.weight`).dtype, 'I8');
      assert.deepEqual(ck.info(`${name}.SCB`).shape, [128]);
      assert.equal(cfg.quantization_config.llm_int8_threshold, 4);
    }
    ck.close();
    const back = loadPhi3(dir); // threshold from quantization_config
    for (const n of qm.linearNames()) assert.deepEqual(packed(back.getLinear(n)), packed(qm.getLinear(n)), n);
    assert.deepEqual(logits(back), logits(qm));
    // Another kind asked for: dequantized (then requantized); 'none' gives the dequantized floats.
    const asFloat = loadPhi3(dir, { quant: 'none' });
    const w = qm.getLinear(name).weight();
    assert.deepEqual(packed(asFloat.getLinear(name)), { kind: 'float', d: Array.from(w.dataSync()) });
    w.dispose();
    for (const x of [qm, back, asFloat]) x.dispose();
  }
  m.dispose();
});

test('a loaded NF4 model holds about 0.56 bytes per linear weight (0.52 with double quant)', () => {
  const m = floatModel();
  const dir = freshDir('bytes');
  savePhi3(dir, m);
  const linearWeights = phi3Tensors(c).filter((e) => e.module !== undefined).reduce((s, e) => s + e.shape[0]! * e.shape[1]!, 0);
  const other = c.vocabSize * c.hiddenSize * 4 + c.hiddenSize * 4 * (2 * c.numHiddenLayers + 1);
  const perWeight = (x: Phi3ForCausalLM) => (x.bytes() - other) / linearWeights;
  const f = loadPhi3(dir);
  assert.equal(perWeight(f), 4);
  const nf4 = loadPhi3(dir, { quant: 'nf4', skipModules: [] });
  assert.ok(Math.abs(perWeight(nf4) - 0.5625) < 0.005, `nf4 ${perWeight(nf4)}`);
  const dq = loadPhi3(dir, { quant: 'nf4', doubleQuant: true, skipModules: [] });
  assert.ok(perWeight(dq) > 0.5 && perWeight(dq) < 0.53, `nf4+dq ${perWeight(dq)}`);
  const half = loadPhi3(dir, { quant: 'nf4', embeddingStorage: 'float16', skipModules: [] });
  assert.equal(half.bytes(), nf4.bytes() - c.vocabSize * c.hiddenSize * 2);
  for (const x of [m, f, nf4, dq, half]) x.dispose();
});

test('lm_head stays float when quantizing, as transformers keeps it (llm_int8_skip_modules); skipModules: [] quantizes it', () => {
  const m = floatModel();
  const dir = freshDir('skip');
  savePhi3(dir, m);
  for (const quant of ['int8', 'nf4'] as const) {
    const byDefault = loadPhi3(dir, { quant });
    assert.equal(byDefault.getLinear('lm_head').kind, 'float');
    for (const n of byDefault.linearNames().filter((x) => x !== 'lm_head')) assert.equal(byDefault.getLinear(n).kind, quant, n);
    const all = loadPhi3(dir, { quant, skipModules: [] });
    assert.equal(all.getLinear('lm_head').kind, quant);
    const some = loadPhi3(dir, { quant, skipModules: ['lm_head', 'model.layers.0.self_attn.o_proj'] });
    assert.equal(some.getLinear('model.layers.0.self_attn.o_proj').kind, 'float');
    // A bitsandbytes save of the default load names the float head in llm_int8_skip_modules; it loads back float.
    const bnb = freshDir(`skip-bnb-${quant}`);
    savePhi3(bnb, byDefault, { quantized: true });
    assert.deepEqual(JSON.parse(readFileSync(join(bnb, 'config.json'), 'utf8')).quantization_config.llm_int8_skip_modules, ['lm_head']);
    const back = loadPhi3(bnb);
    assert.equal(back.getLinear('lm_head').kind, 'float');
    assert.equal(back.getLinear('model.layers.0.mlp.down_proj').kind, quant);
    for (const x of [byDefault, all, some, back]) x.dispose();
  }
  m.dispose();
});

test('trainable load: float variables; a half table cannot train', () => {
  const dir = freshDir('train');
  const m = floatModel();
  savePhi3(dir, m, { dtype: 'BF16' });
  const t = loadPhi3(dir, { trainable: true });
  assert.equal(t.embedTokens.storage, 'float32');
  assert.equal(t.trainableVariables().length, 1 + (2 * c.numHiddenLayers + 1) + t.linearNames().length);
  expectError(() => loadPhi3(dir, { trainable: true, embeddingStorage: 'bfloat16' }), 'E_ARG', 'embeddingStorage');
  t.dispose();
  m.dispose();
});

// ---- bad input --------------------------------------------------------------------------------

/** All tensors of W as F32 raw tensors, with edits: a name → replacement (null: leave out). */
function handWritten(dir: string, edits: Record<string, RawTensor | null>, extra: Array<[string, RawTensor]> = []): void {
  const tensors: Array<[string, RawTensor]> = [];
  for (const e of phi3Tensors(c)) {
    const edit = edits[e.name];
    if (edit === null) continue;
    tensors.push([e.name, edit ?? fromFloat32(W.get(e.name)!, e.shape, 'F32')]);
  }
  writeCheckpoint(dir, configToHf(c), [...tensors, ...extra]);
}

const O_PROJ = 'model.layers.1.self_attn.o_proj.weight';
const NORM = 'model.layers.0.input_layernorm.weight';
const POST = 'model.layers.0.post_attention_layernorm.weight';

test('a tensor of the wrong shape: error names the file, the tensor, expected and found shape', () => {
  const dir = freshDir('bad-shape');
  handWritten(dir, { [O_PROJ]: fromFloat32(new Float32Array(64 * 32), [64, 32], 'F32') });
  const e = expectError(() => loadPhi3(dir), 'E_SHAPE', O_PROJ, '[64, 64]', '[64, 32]', join(dir, 'model.safetensors'));
  assert.equal(e.details.field, O_PROJ);
  assert.equal(e.details.expected, '[64, 64]');
  assert.equal(e.details.found, '[64, 32]');
});

test('a wrong dtype (I32) and a missing tensor are errors naming the tensor', () => {
  const d1 = freshDir('bad-dtype');
  handWritten(d1, { [NORM]: { dtype: 'I32', shape: [64], data: new Uint8Array(256) } });
  expectError(() => loadPhi3(d1), 'E_DTYPE', NORM, 'I32', 'F32, F16, BF16');
  const d2 = freshDir('missing');
  handWritten(d2, { [POST]: null });
  expectError(() => loadPhi3(d2), 'E_MISSING', POST, 'missing', join(d2, 'model.safetensors'));
});

test('all problems at once in one error, including layers beyond num_hidden_layers', () => {
  const dir = freshDir('many');
  handWritten(
    dir,
    { [O_PROJ]: fromFloat32(new Float32Array(64 * 32), [64, 32], 'F32'), [NORM]: { dtype: 'I32', shape: [64], data: new Uint8Array(256) }, [POST]: null },
    [['model.layers.2.mlp.down_proj.weight', fromFloat32(new Float32Array(64 * 96), [64, 96], 'F32')], ['model.layers.2.input_layernorm.weight', fromFloat32(new Float32Array(64), [64], 'F32')]],
  );
  const e = expectError(() => loadPhi3(dir), 'E_FORMAT', '4 problems', O_PROJ, NORM, POST, 'layer 2 is beyond num_hidden_layers (2 tensors)', '[64, 32]', 'I32');
  assert.equal(e.details.file, dir);
});

test('missing shard, unknown model_type, rope scaling, truncated file: errors name the directory and file', () => {
  const m = floatModel();
  const sharded = freshDir('lost-shard');
  const res = savePhi3(sharded, m, { maxShardBytes: 40_000 });
  const lost = res.files.find((f) => f.startsWith('model-00002'))!;
  unlinkSync(join(sharded, lost));
  expectError(() => loadPhi3(sharded), 'E_MISSING', join(sharded, lost));

  const llama = freshDir('llama');
  savePhi3(llama, m);
  const cfgPath = join(llama, 'config.json');
  const cfg = JSON.parse(readFileSync(cfgPath, 'utf8'));
  writeFileSync(cfgPath, JSON.stringify({ ...cfg, model_type: 'llama' }));
  expectError(() => loadPhi3(llama), 'E_CONFIG', cfgPath, "'model_type'", '"llama"');
  writeFileSync(cfgPath, JSON.stringify({ ...cfg, rope_scaling: { type: 'longrope' } }));
  expectError(() => loadPhi3(llama), 'E_CONFIG', cfgPath, "'rope_scaling'");
  rmSync(cfgPath);
  expectError(() => loadPhi3(llama), 'E_MISSING', cfgPath);

  const cut = freshDir('truncated');
  savePhi3(cut, m);
  const file = join(cut, 'model.safetensors');
  truncateSync(file, statSync(file).size - 100);
  expectError(() => loadPhi3(cut), 'E_FORMAT', file, 'truncated');
  m.dispose();
});
