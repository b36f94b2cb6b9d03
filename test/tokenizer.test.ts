/**
 * The Phi-3 tokenizer against llama.cpp (through node-llama-cpp, computed live on every run) over the
 * corpus in test/fixtures/tokenizer-strings.json, plus decoding, the chat template and speed.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { getLlama, LlamaLogLevel, type Llama, type LlamaModel, type Token } from 'node-llama-cpp';
import {
  applyChatTemplate,
  defaultTokenizerPath,
  Phi3Tokenizer,
  PHI3_SPECIAL_TEXTS,
  PHI3_STOP_TOKEN_IDS,
  PHI3_TOKEN_IDS,
  type ChatMessage,
} from '../src/tokenizer/index.ts';
import { CliniloraError } from '../src/errors.ts';
import { escapeSpaces, SpmEncoder } from '../src/tokenizer/spm.ts';
import { Rng } from '../src/util/random.ts';

const CORPUS = new URL('./fixtures/tokenizer-strings.json', import.meta.url);
const strings = (JSON.parse(readFileSync(CORPUS, 'utf8')) as { strings: string[] }).strings;
const wellFormed = (s: string): string => s.replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, '\uFFFD');

let llama: Llama;
let model: LlamaModel;
let tok: Phi3Tokenizer;

before(async () => {
  llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.disabled });
  model = await llama.loadModel({ modelPath: defaultTokenizerPath(), vocabOnly: true });
  tok = await Phi3Tokenizer.fromGguf(defaultTokenizerPath());
});

after(async () => {
  await model?.dispose();
  await llama?.dispose();
});

const ref = (s: string, special: boolean): number[] => Array.from(model.tokenize(s, special), Number);
const show = (s: string): string => JSON.stringify(s.length > 120 ? `${s.slice(0, 120)}…` : s);

test('corpus has at least 500 varied strings', () => {
  assert.ok(strings.length >= 500, `only ${strings.length} strings`);
  assert.equal(new Set(strings).size, strings.length, 'duplicates in corpus');
  assert.ok(strings.includes(''), 'empty string missing');
});

for (const parseSpecial of [true, false]) {
  test(`encode matches llama.cpp on every corpus string (parseSpecial=${parseSpecial})`, () => {
    let mismatches = 0;
    let first = '';
    for (const s of strings) {
      const want = ref(s, parseSpecial);
      const got = tok.encode(s, { parseSpecial });
      if (JSON.stringify(want) !== JSON.stringify(got)) {
        if (mismatches++ === 0) first = `${show(s)}\n  llama.cpp: ${JSON.stringify(want)}\n  ours:      ${JSON.stringify(got)}`;
      }
    }
    assert.equal(mismatches, 0, `${mismatches} of ${strings.length} differ; first:\n${first}`);
  });
}

test('the id-pair index merges exactly like string lookups (llama.cpp style)', () => {
  const byId = new SpmEncoder(tok.vocab);
  const byString = new SpmEncoder(tok.vocab, { stringPairs: true });
  for (const s of strings) {
    const text = escapeSpaces(` ${wellFormed(s)}`);
    const a: number[] = [], b: number[] = [];
    byId.encode(text, a);
    byString.encode(text, b);
    assert.deepEqual(a, b, show(s));
  }
});

test('decode matches llama.cpp detokenize, special tokens rendered and skipped', () => {
  let mismatches = 0;
  let first = '';
  for (const s of strings) {
    const ids = ref(s, true);
    const pairs: [string, string, string][] = [[model.detokenize(ids as Token[], true), tok.decode(ids), 'special on']];
    // llama.cpp keeps the dummy space when a skipped control token comes first; we drop it (HF).
    if (ids.length > 0 && !tok.isSpecial(ids[0]!)) {
      pairs.push([model.detokenize(ids as Token[], false), tok.decode(ids, { skipSpecial: true }), 'special off']);
    }
    for (const [want, got, mode] of pairs) {
      if (want !== got && mismatches++ === 0) first = `${show(s)} (${mode}): llama.cpp ${show(want)}, ours ${show(got)}`;
    }
  }
  assert.equal(mismatches, 0, `${mismatches} differ; first: ${first}`);
});

test('decode(encode(s)) gives s back when special tokens are not parsed', () => {
  // A literal "▁" in the input comes back as a space, in SentencePiece everywhere; lone surrogates as U+FFFD.
  for (const s of strings.filter((x) => !x.includes('\u2581'))) {
    assert.equal(tok.decode(tok.encode(s)), wellFormed(s), show(s));
    assert.equal(tok.decode(tok.encode(s, { addBos: true, addEos: true }), { skipSpecial: true }), wellFormed(s), show(s));
  }
});

test('special tokens: parsed or literal, whitespace after them stripped as Phi-3 says', () => {
  const text = '<|user|>\nHi<|end|>\n';
  const parsed = tok.encode(text, { parseSpecial: true });
  assert.equal(parsed[0], PHI3_TOKEN_IDS.user);
  assert.equal(parsed[parsed.length - 1], PHI3_TOKEN_IDS.end);
  // The "\n" after <|user|> is swallowed (rstrip) and "Hi" gets the dummy prefix: "▁Hi".
  assert.deepEqual(parsed.slice(1, -1), [tok.tokenToId('▁Hi')]);
  assert.equal(tok.decode(parsed), '<|user|> Hi<|end|>');
  assert.equal(tok.decode(parsed, { skipSpecial: true }), 'Hi');
  const literal = tok.encode(text);
  assert.ok(!literal.some((id) => tok.isSpecial(id)), 'no control token without parseSpecial');
  assert.equal(tok.decode(literal), text);
  // <|endoftext|> keeps the whitespace after it.
  assert.equal(tok.decode(tok.encode('<|endoftext|> x', { parseSpecial: true })), '<|endoftext|>  x');
  assert.deepEqual(tok.encode('', { addBos: true }), [PHI3_TOKEN_IDS.bos]);
  assert.deepEqual(tok.encode('x', { addBos: true }).slice(1), tok.encode('x'));
});

test('named ids and stop tokens agree with the vocabulary', () => {
  for (const [name, id] of Object.entries(PHI3_TOKEN_IDS)) {
    assert.equal(tok.idToToken(id), PHI3_SPECIAL_TEXTS[name as keyof typeof PHI3_TOKEN_IDS], name);
  }
  assert.deepEqual(tok.stopTokenIds, [...PHI3_STOP_TOKEN_IDS]);
  assert.deepEqual([tok.bosId, tok.eosId, tok.padId, tok.unkId], [1, 32000, 32000, 0]);
  assert.equal(tok.vocabSize, 32064);
  assert.equal(tok.idToToken(30143), '\uFEFF', 'a BOM token must survive loading');
  assert.equal(tok.addBosToken, true);
  assert.match(tok.chatTemplate ?? '', /<\|user\|>/);
  assert.throws(() => tok.decode([32064]), (e: unknown) => e instanceof CliniloraError && e.code === 'E_ARG' && /ids\[0\]/.test(e.message));
  assert.throws(() => tok.decode([1.5]), CliniloraError);
});

const conversation: ChatMessage[] = [
  { role: 'system', content: 'You are a careful clinical assistant.' },
  { role: 'user', content: 'EF 20%, creatinine 1.9 mg/dL: risk?' },
  { role: 'assistant', content: '{"risk": "high"}' },
  { role: 'user', content: 'Why?' },
];

test('chat template renders the Phi-3 format exactly', () => {
  assert.equal(
    applyChatTemplate(conversation, { addGenerationPrompt: true }),
    '<|system|>\nYou are a careful clinical assistant.<|end|>\n' +
      '<|user|>\nEF 20%, creatinine 1.9 mg/dL: risk?<|end|>\n' +
      '<|assistant|>\n{"risk": "high"}<|end|>\n' +
      '<|user|>\nWhy?<|end|>\n' +
      '<|assistant|>\n',
  );
  assert.equal(applyChatTemplate(conversation.slice(1, 3)), '<|user|>\nEF 20%, creatinine 1.9 mg/dL: risk?<|end|>\n<|assistant|>\n{"risk": "high"}<|end|>\n');
  assert.equal(applyChatTemplate([]), '');
  assert.throws(() => applyChatTemplate([{ role: 'doctor' as 'user', content: 'x' }]), (e: unknown) => e instanceof CliniloraError && /messages\[0\]\.role/.test(e.message));
  assert.throws(() => applyChatTemplate([{ role: 'user', content: 3 as unknown as string }]), /messages\[0\]\.content/);
});

test('encodeChat equals llama.cpp on the rendered template; spans tile the ids', () => {
  for (const addGenerationPrompt of [true, false]) {
    const ids = tok.encodeChat(conversation, { addGenerationPrompt });
    assert.deepEqual(ids, ref(applyChatTemplate(conversation, { addGenerationPrompt }), true));
    const { ids: ids2, spans } = tok.encodeChatWithSpans(conversation, { addGenerationPrompt, addBos: true });
    assert.deepEqual(ids2, [PHI3_TOKEN_IDS.bos, ...ids]);
    assert.equal(spans[0]!.start, 1);
    spans.forEach((s, i) => {
      if (i > 0) assert.equal(s.start, spans[i - 1]!.end);
      assert.equal(ids2[s.start], s.role === 'generation' ? PHI3_TOKEN_IDS.assistant : PHI3_TOKEN_IDS[s.role]);
      if (s.role !== 'generation') assert.equal(ids2[s.end - 1], PHI3_TOKEN_IDS.end);
    });
    assert.equal(spans[spans.length - 1]!.end, ids2.length);
    assert.equal(spans.length, conversation.length + (addGenerationPrompt ? 1 : 0));
  }
});

test('defaultTokenizerPath points at the shipped vocabulary, independent of the cwd', () => {
  const p = defaultTokenizerPath();
  assert.ok(p.endsWith('/data/ggml-vocab-phi-3.gguf') && existsSync(p), p);
});

test('encoding speed on ~1 KB clinical samples (fresh cache)', (t) => {
  const rng = new Rng(7).split('tokenizer-speed');
  const words = strings.filter((s) => s.length > 20 && s.length < 200 && !s.includes('<'));
  const samples: string[] = [];
  for (let i = 0; i < 2000; i++) {
    let s = '';
    while (s.length < 1000) s += `${words[rng.int(words.length)]} value ${(rng.uniform() * 200 - 50).toFixed(2)} mg/dL. `;
    samples.push(s);
  }
  const bytes = samples.reduce((a, s) => a + Buffer.byteLength(s, 'utf8'), 0);
  const fresh = new Phi3Tokenizer(tok.vocab);
  const t0 = performance.now();
  let nTokens = 0;
  for (const s of samples) nTokens += fresh.encode(s).length;
  const sec = (performance.now() - t0) / 1000;
  const mbps = bytes / 1e6 / sec;
  t.diagnostic(`encoded ${(bytes / 1e6).toFixed(2)} MB (${nTokens} tokens) in ${sec.toFixed(2)} s: ${mbps.toFixed(2)} MB/s`);
  // The goal is > 1 MB/s; the bar is lower so a busy shared CPU does not fail the suite.
  assert.ok(mbps > 0.5, `${mbps.toFixed(2)} MB/s`);
});
