/**
 * Hugging Face tokenizer.json: export from the GGUF vocabulary, load it back and get the same ids on
 * the whole corpus; a small hand-written file checks BPE semantics; bad files give named errors.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  defaultTokenizerPath,
  Phi3Tokenizer,
  PHI3_CHAT_TEMPLATE_JINJA,
  toTokenizerJson,
  writeTokenizerFiles,
  type HfTokenizerJson,
} from '../src/tokenizer/index.ts';
import { CliniloraError } from '../src/errors.ts';

const strings = (JSON.parse(readFileSync(new URL('./fixtures/tokenizer-strings.json', import.meta.url), 'utf8')) as { strings: string[] }).strings;
const tmp = (): string => mkdtempSync(join(tmpdir(), 'clinilora-tok-'));

let gg: Phi3Tokenizer;
let dir: string;
let hf: Phi3Tokenizer;

before(async () => {
  gg = await Phi3Tokenizer.fromGguf(defaultTokenizerPath());
  dir = tmp();
  writeTokenizerFiles(gg, dir);
  hf = Phi3Tokenizer.fromTokenizerJson(dir);
});

test('exported tokenizer.json has the shape of Llama/Phi-3 files', () => {
  const j = JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8')) as HfTokenizerJson;
  assert.equal(j.model.type, 'BPE');
  assert.equal(j.model.byte_fallback, true);
  assert.equal(Object.keys(j.model.vocab).length, 32000);
  // Llama-2's tokenizer.json (same 32000 pieces) has 61249 merges starting "▁ t", "e r", "i n".
  assert.equal(j.model.merges.length, 61249);
  assert.deepEqual(j.model.merges.slice(0, 3), ['▁ t', 'e r', 'i n']);
  const byId = new Map(j.added_tokens.map((t) => [t.id, t]));
  // Flags as in Phi-3-mini's tokenizer_config.json added_tokens_decoder.
  assert.deepEqual([byId.get(32007)?.content, byId.get(32007)?.rstrip, byId.get(32007)?.special], ['<|end|>', true, true]);
  assert.deepEqual([byId.get(32000)?.rstrip, byId.get(1)?.rstrip, byId.get(2)?.special, byId.get(2)?.rstrip], [false, false, false, true]);
  const cfg = JSON.parse(readFileSync(join(dir, 'tokenizer_config.json'), 'utf8')) as Record<string, unknown>;
  assert.equal(cfg['chat_template'], PHI3_CHAT_TEMPLATE_JINJA);
  assert.deepEqual([cfg['bos_token'], cfg['eos_token'], cfg['pad_token'], cfg['unk_token']], ['<s>', '<|endoftext|>', '<|endoftext|>', '<unk>']);
});

test('tokenizer loaded from tokenizer.json gives the GGUF ids on the whole corpus', () => {
  let mismatches = 0;
  let first = '';
  for (const s of strings) {
    for (const parseSpecial of [true, false]) {
      const want = gg.encode(s, { parseSpecial });
      const got = hf.encode(s, { parseSpecial });
      if (JSON.stringify(want) !== JSON.stringify(got) && mismatches++ === 0) {
        first = `${JSON.stringify(s)} parseSpecial=${parseSpecial}\n  gguf: ${JSON.stringify(want)}\n  json: ${JSON.stringify(got)}`;
      }
      if (hf.decode(want) !== gg.decode(want) && mismatches++ === 0) first = `decode of ${JSON.stringify(s)}`;
    }
  }
  assert.equal(mismatches, 0, `${mismatches} differ; first: ${first}`);
  assert.deepEqual(
    [hf.vocabSize, hf.bosId, hf.eosId, hf.padId, hf.unkId, hf.addBosToken, hf.stopTokenIds],
    [gg.vocabSize, gg.bosId, gg.eosId, gg.padId, gg.unkId, gg.addBosToken, gg.stopTokenIds],
  );
  assert.equal(hf.chatTemplate, PHI3_CHAT_TEMPLATE_JINJA);
  // The file itself works as well as its directory.
  assert.deepEqual(Phi3Tokenizer.fromTokenizerJson(join(dir, 'tokenizer.json')).encode(strings[0]!), gg.encode(strings[0]!));
});

/** A tiny Llama-style tokenizer.json written by hand: 3 controls, 256 bytes, a few pieces. */
function tinyJson(): Record<string, unknown> {
  const vocab: Record<string, number> = { '<unk>': 0, '<s>': 1, '</s>': 2 };
  for (let b = 0; b < 256; b++) vocab[`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`] = 3 + b;
  ['▁', 'h', 'e', 'l', 'o', '▁h', 'll', '▁he', 'llo', '▁hello'].forEach((p, i) => { vocab[p] = 259 + i; });
  return {
    version: '1.0',
    added_tokens: [
      { id: 0, content: '<unk>', special: true, rstrip: false, lstrip: false, normalized: false, single_word: false },
      { id: 1, content: '<s>', special: true, rstrip: false, lstrip: false, normalized: false, single_word: false },
      { id: 2, content: '</s>', special: true, rstrip: false, lstrip: false, normalized: false, single_word: false },
      { id: 269, content: '<|end|>', special: true, rstrip: true, lstrip: false, normalized: false, single_word: false },
    ],
    normalizer: { type: 'Sequence', normalizers: [{ type: 'Prepend', prepend: '▁' }, { type: 'Replace', pattern: { String: ' ' }, content: '▁' }] },
    pre_tokenizer: null,
    model: { type: 'BPE', byte_fallback: true, unk_token: '<unk>', vocab, merges: ['l l', '▁ h', '▁h e', ['ll', 'o'], '▁he llo'] },
  };
}

function writeTiny(mutate: (j: Record<string, unknown>) => void = () => {}, config?: string): string {
  const d = tmp();
  const j = tinyJson();
  mutate(j);
  writeFileSync(join(d, 'tokenizer.json'), JSON.stringify(j));
  if (config !== undefined) writeFileSync(join(d, 'tokenizer_config.json'), config);
  return d;
}

test('a hand-written tokenizer.json: merges by rank, byte fallback, added tokens', () => {
  const t = Phi3Tokenizer.fromTokenizerJson(writeTiny());
  // "▁hello": l+l, ▁+h, ▁h+e, ll+o, ▁he+llo in merge order -> one piece.
  assert.deepEqual(t.encode('hello'), [268]);
  // "▁hel": ▁h, ▁he; the lone "l" stays.
  assert.deepEqual(t.encode('hel'), [266, 262]);
  // "x" is not a piece: byte fallback to <0x78> (id 3 + 0x78).
  assert.deepEqual(t.encode('hex'), [266, 3 + 0x78]);
  // "lll": the leftmost "l l" merges first; nothing joins "▁" to "ll".
  assert.deepEqual(t.encode('lll'), [259, 265, 262]);
  // <|end|> strips the spaces after it; the next text gets the dummy "▁" again.
  assert.deepEqual(t.encode('hello<|end|>  hello', { parseSpecial: true }), [268, 269, 268]);
  assert.ok(!t.encode('hello<|end|>').includes(269));
  assert.equal(t.decode([268, 269, 268]), 'hello<|end|> hello');
  assert.deepEqual([t.bosId, t.eosId, t.unkId, t.padId, t.addBosToken], [1, 2, 0, 2, false]);
  const withCfg = Phi3Tokenizer.fromTokenizerJson(writeTiny(() => {}, JSON.stringify({ add_bos_token: true, eos_token: { content: '<|end|>' }, pad_token: '<unk>' })));
  assert.deepEqual([withCfg.eosId, withCfg.padId, withCfg.addBosToken], [269, 0, true]);
});

function assertError(fn: () => unknown, code: string, ...parts: string[]): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof CliniloraError, `not a CliniloraError: ${String(e)}`);
    assert.equal(e.code, code, e.message);
    for (const p of parts) assert.ok(e.message.includes(p), `"${e.message}" lacks "${p}"`);
    return true;
  });
}

test('missing and malformed files are CliniloraErrors naming the file and field', async () => {
  const d = tmp();
  assertError(() => Phi3Tokenizer.fromTokenizerJson(join(d, 'nope.json')), 'E_IO', 'nope.json');
  assertError(() => Phi3Tokenizer.fromTokenizerJson(d), 'E_IO', join(d, 'tokenizer.json'));
  mkdirSync(join(d, 'bad'));
  writeFileSync(join(d, 'bad', 'tokenizer.json'), '{\n  "model": {\n    "type": "BPE",\n');
  assertError(() => Phi3Tokenizer.fromTokenizerJson(join(d, 'bad')), 'E_FORMAT', join(d, 'bad', 'tokenizer.json'), 'malformed JSON');
  assertError(() => Phi3Tokenizer.fromTokenizerJson(writeTiny((j) => { (j['model'] as Record<string, unknown>)['type'] = 'Unigram'; })), 'E_UNSUPPORTED', "'model.type'", 'Unigram');
  assertError(() => Phi3Tokenizer.fromTokenizerJson(writeTiny((j) => { delete (j['model'] as Record<string, unknown>)['vocab']; })), 'E_FORMAT', "'model.vocab'");
  assertError(() => Phi3Tokenizer.fromTokenizerJson(writeTiny((j) => { (j['model'] as Record<string, unknown>)['merges'] = ['h x']; })), 'E_FORMAT', "'model.merges[0]'", 'hx');
  assertError(() => Phi3Tokenizer.fromTokenizerJson(writeTiny((j) => { j['pre_tokenizer'] = { type: 'Metaspace', replacement: '▁' }; })), 'E_UNSUPPORTED', "'pre_tokenizer'");
  assertError(() => Phi3Tokenizer.fromTokenizerJson(writeTiny((j) => { j['added_tokens'] = [{ id: 'x' }]; })), 'E_FORMAT', "'added_tokens[0]'");
  assertError(() => Phi3Tokenizer.fromTokenizerJson(writeTiny(() => {}, '{"add_bos_token": "yes"}')), 'E_FORMAT', 'tokenizer_config.json', "'add_bos_token'");
  assertError(() => Phi3Tokenizer.fromTokenizerJson(writeTiny(() => {}, '{oops')), 'E_FORMAT', 'tokenizer_config.json');
  assertError(() => Phi3Tokenizer.fromTokenizerJson(writeTiny(() => {}, '{"eos_token": "<|nope|>"}')), 'E_TOKENIZER', "'eos_token'", '<|nope|>');
  await assert.rejects(Phi3Tokenizer.fromGguf(join(d, 'missing.gguf')), (e: unknown) => e instanceof CliniloraError && e.code === 'E_IO' && e.message.includes('missing.gguf'));
  writeFileSync(join(d, 'fake.gguf'), 'this is not a gguf file at all');
  await assert.rejects(Phi3Tokenizer.fromGguf(join(d, 'fake.gguf')), (e: unknown) => e instanceof CliniloraError && e.code === 'E_FORMAT' && e.message.includes('fake.gguf'));
});

test('exporting the json-loaded tokenizer gives the same tokenizer.json (a fixed point)', () => {
  assert.equal(JSON.stringify(toTokenizerJson(gg)), JSON.stringify(toTokenizerJson(hf)));
});
