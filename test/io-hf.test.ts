import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CliniloraError } from '../src/errors.ts';
import { openCheckpoint, writeCheckpoint } from '../src/io/hf-checkpoint.ts';
import { openSafetensors, writeSafetensors, type LazyTensor } from '../src/io/safetensors.ts';
import { fromFloat32, toFloat32, type RawTensor } from '../src/io/tensor.ts';

const root = mkdtempSync(join(tmpdir(), 'clinilora-hf-'));
after(() => rmSync(root, { recursive: true, force: true }));
const config = { model_type: 'phi3', hidden_size: 8, num_hidden_layers: 2, architectures: ['Phi3ForCausalLM'] };

/** Deterministic tensors: layer i, value j → i + j/100. Each [4, 8] F32 = 128 bytes. */
function tensors(n: number): Array<[string, RawTensor]> {
  return Array.from({ length: n }, (_, i) => [
    `model.layers.${i}.mlp.down_proj.weight`,
    fromFloat32(Array.from({ length: 32 }, (_, j) => i + j / 100), [4, 8], 'F32'),
  ]);
}

function assertSameTensors(dir: string, expected: Array<[string, RawTensor]>): void {
  const ck = openCheckpoint(dir);
  try {
    assert.deepEqual(ck.names().sort(), expected.map(([n]) => n).sort());
    for (const [name, t] of expected) {
      const r = ck.read(name);
      assert.deepEqual(r.shape, t.shape);
      assert.deepEqual(Array.from(toFloat32(r)), Array.from(toFloat32(t)), name);
    }
  } finally {
    ck.close();
  }
}

test('single-file checkpoint round trip: config.json + model.safetensors', () => {
  const dir = join(root, 'single');
  const ts = tensors(3);
  const res = writeCheckpoint(dir, config, ts);
  assert.deepEqual(readdirSync(dir).sort(), ['config.json', 'model.safetensors']);
  assert.deepEqual(res.files, ['config.json', 'model.safetensors']);
  assert.equal(res.totalBytes, 3 * 128);
  const ck = openCheckpoint(dir);
  assert.deepEqual(ck.config, config);
  assert.equal(ck.info(ts[1]![0]).file, 'model.safetensors');
  ck.close();
  const st = openSafetensors(join(dir, 'model.safetensors'));
  assert.deepEqual(st.metadata, { format: 'pt' });
  st.close();
  assertSameTensors(dir, ts);
});

test('sharded checkpoint: shard names, index with total_size, each shard within the limit', () => {
  const dir = join(root, 'sharded');
  const ts = tensors(5);
  // 300 bytes a shard → two 128-byte tensors each: 2 + 2 + 1
  writeCheckpoint(dir, config, ts, { maxShardBytes: 300 });
  const files = readdirSync(dir).sort();
  assert.deepEqual(files, [
    'config.json',
    'model-00001-of-00003.safetensors',
    'model-00002-of-00003.safetensors',
    'model-00003-of-00003.safetensors',
    'model.safetensors.index.json',
  ]);
  const index = JSON.parse(readFileSync(join(dir, 'model.safetensors.index.json'), 'utf8'));
  assert.equal(index.metadata.total_size, 5 * 128);
  assert.equal(index.weight_map['model.layers.0.mlp.down_proj.weight'], 'model-00001-of-00003.safetensors');
  assert.equal(index.weight_map['model.layers.4.mlp.down_proj.weight'], 'model-00003-of-00003.safetensors');
  assert.equal(Object.keys(index.weight_map).length, 5);
  assertSameTensors(dir, ts);
  // overwriting replaces the directory completely (no stale shards)
  writeCheckpoint(dir, config, ts.slice(0, 1), { maxShardBytes: 300 });
  assert.deepEqual(readdirSync(dir).sort(), ['config.json', 'model.safetensors']);
  assert.deepEqual(readdirSync(root).filter((x) => x.includes('.tmp-')), []);
});

test('a streamed generator of lazy tensors is consumed one shard at a time', () => {
  const dir = join(root, 'lazy');
  let loads = 0;
  const loadsBeforeYield: number[] = [];
  function* gen(): Generator<[string, LazyTensor]> {
    for (let i = 0; i < 6; i++) {
      loadsBeforeYield.push(loads);
      const load = () => {
        loads++;
        return fromFloat32(new Float32Array(32).fill(i), [32], 'F32').data;
      };
      yield [`t${i}`, { dtype: 'F32', shape: [32], load }];
    }
  }
  writeCheckpoint(dir, config, gen(), { maxShardBytes: 256 });
  // two 128-byte tensors a shard: shard 1 is written (t0, t1 loaded) before t3 is even asked for
  assert.deepEqual(loadsBeforeYield, [0, 0, 0, 2, 2, 4]);
  assert.equal(loads, 6);
  const ck = openCheckpoint(dir);
  assert.equal(ck.names().length, 6);
  assert.deepEqual(Array.from(toFloat32(ck.read('t5'))).slice(0, 2), [5, 5]);
  assert.equal(ck.info('t5').file, 'model-00003-of-00003.safetensors');
  ck.close();
});

function expectError(fn: () => unknown, code: string, ...fragments: string[]): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof CliniloraError, String(e));
    assert.equal(e.code, code, e.message);
    for (const f of fragments) assert.ok(e.message.includes(f), `'${f}' in: ${e.message}`);
    return true;
  });
}

test('errors: missing config, bad JSON, missing shard, tensor missing from its shard, no weights', () => {
  const dir = join(root, 'broken');
  writeCheckpoint(dir, config, tensors(4), { maxShardBytes: 200 });

  // index lists a tensor its shard does not contain
  const indexPath = join(dir, 'model.safetensors.index.json');
  const index = JSON.parse(readFileSync(indexPath, 'utf8'));
  index.weight_map['model.layers.9.ghost.weight'] = 'model-00002-of-00004.safetensors';
  writeFileSync(indexPath, JSON.stringify(index));
  expectError(() => openCheckpoint(dir), 'E_FORMAT', 'model.layers.9.ghost.weight', 'model-00002-of-00004.safetensors');

  // a shard file is missing: the error names it and a tensor that needs it
  delete index.weight_map['model.layers.9.ghost.weight'];
  writeFileSync(indexPath, JSON.stringify(index));
  rmSync(join(dir, 'model-00003-of-00004.safetensors'));
  expectError(() => openCheckpoint(dir), 'E_MISSING', 'model-00003-of-00004.safetensors', 'model.layers.2.mlp.down_proj.weight');

  writeFileSync(indexPath, '{"weight_map": ');
  expectError(() => openCheckpoint(dir), 'E_FORMAT', indexPath, 'JSON');
  writeFileSync(indexPath, '{"metadata": {}}');
  expectError(() => openCheckpoint(dir), 'E_FORMAT', 'weight_map');

  writeFileSync(join(dir, 'config.json'), '{not json');
  expectError(() => openCheckpoint(dir), 'E_FORMAT', join(dir, 'config.json'));
  rmSync(join(dir, 'config.json'));
  expectError(() => openCheckpoint(dir), 'E_MISSING', join(dir, 'config.json'));

  const bin = join(root, 'bin');
  mkdirSync(bin);
  writeFileSync(join(bin, 'config.json'), '{}');
  writeFileSync(join(bin, 'pytorch_model.bin'), 'x');
  expectError(() => openCheckpoint(bin), 'E_MISSING', 'only safetensors');

  const ck = join(root, 'ok');
  writeCheckpoint(ck, config, tensors(1));
  const c = openCheckpoint(ck);
  expectError(() => c.read('nope'), 'E_MISSING', "'nope'");
  c.close();
  expectError(() => writeCheckpoint(join(root, 'dup'), config, [...tensors(1), ...tensors(1)]), 'E_ARG', 'duplicate');
  assert.ok(!existsSync(join(root, 'dup')), 'a failed write leaves no directory');
});

test('reads a sharded checkpoint laid out by hand as transformers saves it', () => {
  const dir = join(root, 'hand');
  mkdirSync(dir);
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ vocab_size: 10 }));
  writeSafetensors(join(dir, 'model-00001-of-00002.safetensors'), [['a', fromFloat32([1, 2], [2], 'BF16')]], { format: 'pt' });
  writeSafetensors(join(dir, 'model-00002-of-00002.safetensors'), [['b', fromFloat32([3], [1], 'F16')]], { format: 'pt' });
  writeFileSync(
    join(dir, 'model.safetensors.index.json'),
    JSON.stringify({ metadata: { total_size: 6 }, weight_map: { a: 'model-00001-of-00002.safetensors', b: 'model-00002-of-00002.safetensors' } }),
  );
  const ck = openCheckpoint(dir);
  assert.deepEqual(ck.config, { vocab_size: 10 });
  assert.deepEqual(Array.from(toFloat32(ck.read('a'))), [1, 2]);
  assert.equal(ck.read('b').dtype, 'F16');
  assert.deepEqual(ck.info('b'), { dtype: 'F16', shape: [1], dataOffsets: [0, 2], file: 'model-00002-of-00002.safetensors' });
  ck.close();
});
