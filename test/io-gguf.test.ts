import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CliniloraError } from '../src/errors.ts';
import { dequantize, openGguf, quantizeQ4_0, quantizeQ8_0, writeGguf, type GgufValue } from '../src/io/gguf.ts';
import { exportPhi3Gguf, loadTokenizerMetadata, type FloatTensor } from '../src/io/gguf-phi3.ts';
import { f16BitsToF32, fromFloat32 } from '../src/io/tensor.ts';
import { Rng } from '../src/util/random.ts';

const dir = mkdtempSync(join(tmpdir(), 'clinilora-gguf-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const VOCAB = new URL('../data/ggml-vocab-phi-3.gguf', import.meta.url).pathname;

function randn(rng: Rng, n: number, scale = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.normal() * scale;
  return a;
}

async function expectReject(p: Promise<unknown>, code: string, ...fragments: string[]): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof CliniloraError, String(e));
    assert.equal(e.code, code, e.message);
    for (const f of fragments) assert.ok(e.message.includes(f), `'${f}' in: ${e.message}`);
    return true;
  });
}

test('Q8_0 matches ggml: fp16 d = absmax/127, q = roundf(x/d) (halves away from zero)', () => {
  const x = new Float32Array(96);
  for (let j = 0; j < 32; j++) x[j] = j - 16; // block 0: integers …
  x[5] = 127; // … with absmax 127 → d = 1, q = x exactly
  // block 1 all zero → d = 0, q = 0
  for (let j = 0; j < 32; j++) x[64 + j] = (j % 2 === 0 ? 0.25 : -0.25) * (j === 0 ? 254 : 1); // absmax 63.5 → d = 0.5
  const q = quantizeQ8_0(x);
  assert.equal(q.byteLength, 3 * 34);
  assert.deepEqual([q[0], q[1]], [0x00, 0x3c], 'fp16(1.0)');
  for (let j = 0; j < 32; j++) assert.equal((q[2 + j]! << 24) >> 24, x[j], `block 0 q[${j}]`);
  assert.ok(q.subarray(34, 68).every((b) => b === 0), 'zero block');
  assert.deepEqual([q[68], q[69]], [0x00, 0x38], 'fp16(0.5)');
  assert.equal((q[70]! << 24) >> 24, 127);
  // ±0.25 / 0.5 = ±0.5 → ±1 (roundf rounds halves away from zero; round-half-even would give 0)
  for (let j = 1; j < 32; j++) assert.equal((q[70 + j]! << 24) >> 24, j % 2 === 0 ? 1 : -1, `block 2 q[${j}]`);
  assert.deepEqual(Array.from(dequantize('Q8_0', q, 96).subarray(0, 32)), Array.from(x.subarray(0, 32)));
});

test('Q4_0 matches ggml: d = max/-8, q = min(15, trunc(x/d + 8.5)), low nibbles first', () => {
  const x = new Float32Array(32);
  x[0] = -8; // largest magnitude, negative → d = 1
  x[1] = 7;
  x[2] = 0.5; // 9.0 → 9
  x[3] = -0.5; // 8.0 → 8
  x[16] = 7.4; // 15.9 → 15
  x[17] = -7.6; // 0.9 → 0
  const q = quantizeQ4_0(x);
  assert.equal(q.byteLength, 18);
  assert.deepEqual([q[0], q[1]], [0x00, 0x3c], 'fp16(1.0)');
  assert.equal(q[2], 0 | (15 << 4)); // x[0] low, x[16] high
  assert.equal(q[3], 15 | (0 << 4)); // x[1], x[17]
  assert.equal(q[4], 9 | (8 << 4)); // x[2], x[18] = 0 → 8
  assert.equal(q[5], 8 | (8 << 4));
  const back = dequantize('Q4_0', q, 32);
  assert.deepEqual([back[0], back[1], back[2], back[3], back[16], back[17]], [-8, 7, 1, 0, 7, -8]);
});

test('quantization error bounds on random data', () => {
  const rng = new Rng(3);
  const x = randn(rng, 32 * 64);
  // half a step, plus the fp16 rounding of d times the largest |q| (ggml quantizes with the unrounded d)
  for (const [type, quant, bound] of [['Q8_0', quantizeQ8_0, 0.5 + 127 * 2 ** -11], ['Q4_0', quantizeQ4_0, 1.0 + 8 * 2 ** -11]] as const) {
    const q = quant(x);
    const y = dequantize(type, q, x.length);
    const blockBytes = q.byteLength / 64;
    for (let b = 0; b < 64; b++) {
      const d = Math.abs(f16BitsToF32(q[b * blockBytes]! | (q[b * blockBytes + 1]! << 8)));
      for (let j = 0; j < 32; j++) {
        const err = Math.abs(x[b * 32 + j]! - y[b * 32 + j]!);
        assert.ok(err <= bound * d + 1e-7, `${type} block ${b}: err ${err} > ${bound}·d (d = ${d})`);
      }
    }
  }
});

test('write → read round trip: every metadata type, arrays of strings, tensors of every type, 32-byte alignment', async () => {
  const rng = new Rng(7);
  const metadata: Array<[string, GgufValue]> = [
    ['general.architecture', { type: 'string', value: 'test' }],
    ['t.u8', { type: 'u8', value: 255 }],
    ['t.i8', { type: 'i8', value: -128 }],
    ['t.u16', { type: 'u16', value: 65535 }],
    ['t.i16', { type: 'i16', value: -32768 }],
    ['t.u32', { type: 'u32', value: 4294967295 }],
    ['t.i32', { type: 'i32', value: -2147483648 }],
    ['t.u64', { type: 'u64', value: 18446744073709551615n }],
    ['t.i64', { type: 'i64', value: -9223372036854775808n }],
    ['t.f32', { type: 'f32', value: 0.1 }],
    ['t.f64', { type: 'f64', value: 0.1 }],
    ['t.bool', { type: 'bool', value: true }],
    ['t.str', { type: 'string', value: 'héllo ▁wörld' }],
    ['t.strs', { type: 'array', itemType: 'string', value: ['<unk>', '', '▁the', '<|end|>'] }],
    ['t.i32s', { type: 'array', itemType: 'i32', value: [1, -2, 3] }],
    ['t.f32s', { type: 'array', itemType: 'f32', value: [0.5, -1000] }],
    ['t.empty', { type: 'array', itemType: 'u8', value: [] }],
  ];
  const f32 = randn(rng, 3 * 5);
  const f16 = randn(rng, 7);
  const q8 = randn(rng, 64 * 3);
  const q4 = randn(rng, 32 * 2);
  const path = join(dir, 'rt.gguf');
  writeGguf(path, {
    metadata,
    tensors: [
      { name: 'a.f32', dims: [5, 3], type: 'F32', data: f32 },
      { name: 'b.f16', dims: [7], type: 'F16', data: f16 },
      { name: 'c.q8', dims: [64, 3], type: 'Q8_0', data: q8 },
      { name: 'd.q4', dims: [32, 2], type: 'Q4_0', data: q4 },
      { name: 'e.raw', dims: [2], type: 'F16', data: fromFloat32([1, -2], [2], 'F16').data },
    ],
  });
  const g = await openGguf(path);
  try {
    assert.equal(g.version, 3);
    assert.deepEqual(Object.keys(g.metadata), metadata.map(([k]) => k));
    for (const [k, v] of metadata) {
      const got = g.metadata[k]!;
      if (v.type === 'f32') assert.deepEqual(got, { type: 'f32', value: Math.fround(v.value as number) });
      else if (v.type === 'array' && v.itemType === 'f32') assert.deepEqual(got, { ...v, value: v.value.map((x) => Math.fround(x as number)) });
      else assert.deepEqual(got, v, k);
    }
    assert.equal(g.get('t.u64'), 18446744073709551615n);
    assert.equal(g.dataOffset % 32, 0);
    for (const t of g.tensors) assert.equal(t.offset % 32, 0, t.name);
    assert.deepEqual(g.tensors.map((t) => [t.name, t.type, t.dims]), [
      ['a.f32', 'F32', [5, 3]],
      ['b.f16', 'F16', [7]],
      ['c.q8', 'Q8_0', [64, 3]],
      ['d.q4', 'Q4_0', [32, 2]],
      ['e.raw', 'F16', [2]],
    ]);
    assert.deepEqual(g.readTensor('a.f32'), f32);
    const h = g.readTensor('b.f16');
    for (let i = 0; i < 7; i++) assert.ok(Math.abs(h[i]! - f16[i]!) <= Math.abs(f16[i]!) * 2 ** -11 + 1e-7);
    assert.deepEqual(g.readTensorRaw('c.q8').data, quantizeQ8_0(q8));
    assert.deepEqual(g.readTensor('c.q8'), dequantize('Q8_0', quantizeQ8_0(q8), q8.length));
    assert.deepEqual(g.readTensorRaw('d.q4').data, quantizeQ4_0(q4));
    assert.deepEqual(Array.from(g.readTensor('e.raw')), [1, -2]);
  } finally {
    g.close();
  }
  // header bytes: magic, version 3, counts
  const bytes = readFileSync(path);
  assert.equal(bytes.subarray(0, 4).toString('ascii'), 'GGUF');
  assert.equal(bytes.readUInt32LE(4), 3);
  assert.equal(bytes.readBigUInt64LE(8), 5n);
  assert.equal(bytes.readBigUInt64LE(16), BigInt(metadata.length));
});

test('reads the real Phi-3 vocabulary GGUF', async () => {
  const g = await openGguf(VOCAB);
  g.close();
  assert.equal(g.get('general.architecture'), 'phi3');
  const tokens = g.get('tokenizer.ggml.tokens') as string[];
  assert.equal(tokens.length, 32064);
  assert.equal(tokens[32000], '<|endoftext|>');
  assert.equal(tokens[32007], '<|end|>');
  assert.equal(g.metadata['tokenizer.ggml.scores']?.type, 'array');
  const tok = await loadTokenizerMetadata(VOCAB);
  assert.ok(tok.every(([k]) => k.startsWith('tokenizer.')));
  assert.ok(tok.some(([k]) => k === 'tokenizer.ggml.token_type'));
});

test('truncated or malformed GGUF files give E_FORMAT naming the file', async () => {
  const path = join(dir, 'ok.gguf');
  writeGguf(path, {
    metadata: [['general.architecture', { type: 'string', value: 'test' }]],
    tensors: [{ name: 'w', dims: [64, 4], type: 'F32', data: new Float32Array(256) }],
  });
  const bytes = readFileSync(path);
  const cut = join(dir, 'cut-data.gguf');
  writeFileSync(cut, bytes.subarray(0, bytes.byteLength - 10));
  await expectReject(openGguf(cut), 'E_FORMAT', cut, "'w'", 'truncated');
  const cutHeader = join(dir, 'cut-header.gguf');
  writeFileSync(cutHeader, bytes.subarray(0, 60));
  await expectReject(openGguf(cutHeader), 'E_FORMAT', cutHeader);
  const tiny = join(dir, 'tiny.gguf');
  writeFileSync(tiny, bytes.subarray(0, 10));
  await expectReject(openGguf(tiny), 'E_FORMAT', tiny, 'too short');
  const magic = join(dir, 'magic.gguf');
  writeFileSync(magic, Buffer.concat([Buffer.from('GGML'), bytes.subarray(4)]));
  await expectReject(openGguf(magic), 'E_FORMAT', magic, 'magic');
  // the vocabulary file cut inside its token array (the parser underneath reads zeros there)
  const vocabCut = join(dir, 'vocab-cut.gguf');
  writeFileSync(vocabCut, readFileSync(VOCAB).subarray(0, 100_000));
  await expectReject(openGguf(vocabCut), 'E_FORMAT', vocabCut);
  await expectReject(openGguf(join(dir, 'missing.gguf')), 'E_MISSING');
});

test('writer rejects bad values and shapes, and never leaves a partial file', () => {
  const path = join(dir, 'bad.gguf');
  assert.throws(() => writeGguf(path, { metadata: [['x', { type: 'u8', value: 300 }]], tensors: [] }), (e: CliniloraError) => e.code === 'E_ARG' && e.message.includes("'x'"));
  assert.throws(() => writeGguf(path, { metadata: [['x', { type: 'u32', value: 1.5 }]], tensors: [] }), (e: CliniloraError) => e.code === 'E_ARG');
  assert.throws(() => writeGguf(path, { metadata: [], tensors: [{ name: 'q', dims: [48, 2], type: 'Q8_0', data: new Float32Array(96) }] }), (e: CliniloraError) => e.code === 'E_SHAPE' && e.message.includes("'q'"));
  assert.throws(() => writeGguf(path, { metadata: [], tensors: [{ name: 'f', dims: [4], type: 'F32', data: new Float32Array(3) }] }), (e: CliniloraError) => e.code === 'E_SHAPE');
  assert.deepEqual(readdirSync(dir).filter((f) => f.startsWith('.bad.gguf') || f === 'bad.gguf'), []);
});

/** A tiny random Phi-3 in HF naming: hidden 64, 2 layers, 4 heads (2 KV heads), intermediate 128, real vocab. */
function tinyPhi3(): { hfConfig: Record<string, unknown>; tensors: Array<[string, FloatTensor]> } {
  const hfConfig = {
    architectures: ['Phi3ForCausalLM'],
    hidden_size: 64,
    intermediate_size: 128,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    max_position_embeddings: 4096,
    original_max_position_embeddings: 4096,
    rms_norm_eps: 1e-5,
    rope_theta: 10000.0,
    rope_scaling: null,
    sliding_window: 2047,
    vocab_size: 32064,
    tie_word_embeddings: false,
  };
  const rng = new Rng(11);
  const w = (shape: number[], scale = 0.02): FloatTensor => ({ shape, data: randn(rng, shape[0]! * (shape[1] ?? 1), scale) });
  const ones = (n: number): FloatTensor => ({ shape: [n], data: new Float32Array(n).fill(1) });
  const tensors: Array<[string, FloatTensor]> = [['lm_head.weight', w([32064, 64])], ['model.norm.weight', ones(64)]];
  for (let i = 0; i < 2; i++) {
    const p = `model.layers.${i}.`;
    tensors.push(
      [`${p}self_attn.qkv_proj.weight`, w([(4 + 2 * 2) * 16, 64])],
      [`${p}self_attn.o_proj.weight`, w([64, 64])],
      [`${p}mlp.gate_up_proj.weight`, w([256, 64])],
      [`${p}mlp.down_proj.weight`, w([64, 128])],
      [`${p}input_layernorm.weight`, ones(64)],
      [`${p}post_attention_layernorm.weight`, ones(64)],
    );
  }
  tensors.push(['model.embed_tokens.weight', w([32064, 64], 1)]);
  return { hfConfig, tensors };
}

test('Phi-3 export: our reader reads back what was written, with llama.cpp names and dims', async () => {
  const { hfConfig, tensors } = tinyPhi3();
  const tokenizer = await loadTokenizerMetadata(VOCAB);
  const path = join(dir, 'phi3-q8.gguf');
  const res = await exportPhi3Gguf(path, { hfConfig, tensors, tokenizer, fileType: 'Q8_0', name: 'tiny' });
  assert.equal(res.tensors, 3 + 2 * 6);
  const g = await openGguf(path);
  try {
    assert.equal(g.get('general.architecture'), 'phi3');
    assert.equal(g.get('phi3.block_count'), 2);
    assert.equal(g.get('phi3.attention.head_count_kv'), 2);
    assert.equal(g.get('phi3.rope.dimension_count'), 16);
    assert.equal(g.get('general.file_type'), 7);
    assert.equal((g.get('tokenizer.ggml.tokens') as string[]).length, 32064);
    const info = new Map(g.tensors.map((t) => [t.name, t]));
    assert.deepEqual(info.get('blk.0.attn_qkv.weight')?.dims, [64, 128]);
    assert.deepEqual(info.get('blk.1.ffn_up.weight')?.dims, [64, 256]);
    assert.deepEqual(info.get('blk.1.ffn_down.weight')?.dims, [128, 64]);
    assert.equal(info.get('blk.0.attn_norm.weight')?.type, 'F32');
    assert.equal(info.get('output.weight')?.type, 'Q8_0');
    const src = new Map(tensors);
    // row-major bytes are unchanged by the dims reversal: element [r, c] of gate_up is ggml (c, r)
    const up = g.readTensor('blk.1.ffn_up.weight');
    const hf = src.get('model.layers.1.mlp.gate_up_proj.weight')!.data;
    assert.deepEqual(up, dequantize('Q8_0', quantizeQ8_0(hf), hf.length));
    assert.deepEqual(g.readTensor('output_norm.weight'), src.get('model.norm.weight')!.data);
  } finally {
    g.close();
  }
  await assert.rejects(
    exportPhi3Gguf(join(dir, 'x.gguf'), { hfConfig, tensors: tensors.slice(1), tokenizer, fileType: 'F16' }),
    (e: CliniloraError) => e.code === 'E_MISSING' && e.message.includes('lm_head.weight'),
  );
  await assert.rejects(
    exportPhi3Gguf(join(dir, 'x.gguf'), { hfConfig: { ...hfConfig, hidden_size: 32 }, tensors, tokenizer, fileType: 'F16' }),
    (e: CliniloraError) => e.code === 'E_SHAPE',
  );
  await assert.rejects(
    exportPhi3Gguf(join(dir, 'x.gguf'), { hfConfig: { ...hfConfig, rope_scaling: { type: 'longrope' } }, tensors, tokenizer, fileType: 'F16' }),
    (e: CliniloraError) => e.code === 'E_CONFIG' && e.message.includes('rope_scaling'),
  );
  assert.deepEqual(readdirSync(dir).filter((f) => f.includes('x.gguf')), [], 'failed exports leave nothing');
});

test('llama.cpp (node-llama-cpp) loads the exported Phi-3 and evaluates tokens', async () => {
  const { getLlama, LlamaLogLevel } = await import('node-llama-cpp');
  const { hfConfig, tensors } = tinyPhi3();
  const tokenizer = await loadTokenizerMetadata(VOCAB);
  const llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error });
  for (const fileType of ['F16', 'Q8_0'] as const) {
    const path = join(dir, `phi3-${fileType}.gguf`);
    await exportPhi3Gguf(path, { hfConfig, tensors, tokenizer, fileType });
    const model = await llama.loadModel({ modelPath: path });
    try {
      assert.equal(model.fileInfo.metadata.general.architecture, 'phi3');
      assert.equal(model.fileInsights.totalLayers - 1, 2);
      // the real Phi-3 tokenizer came along: special tokens map to their ids
      assert.deepEqual(Array.from(model.tokenize('<|user|>', true)), [32010]);
      const context = await model.createContext({ contextSize: 64, batchSize: 16, threads: 1 });
      try {
        const seq = context.getSequence();
        const tokens = model.tokenize('<|user|>\nHello there<|end|>\n<|assistant|>', true);
        const generated: number[] = [];
        for await (const t of seq.evaluate(tokens, { temperature: 0 })) {
          generated.push(t);
          if (generated.length >= 3) break;
        }
        assert.equal(generated.length, 3);
        assert.ok(generated.every((t) => Number.isInteger(t) && t >= 0 && t < 32064));
      } finally {
        await context.dispose();
      }
    } finally {
      await model.dispose();
    }
  }
});
