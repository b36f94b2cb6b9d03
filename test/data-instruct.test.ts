import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadInstructJsonl, normalizeText } from '../src/data/instruct.ts';
import { sampleId } from '../src/data/sample.ts';
import { CliniloraError } from '../src/errors.ts';

const FIXTURE = new URL('./fixtures/data/instruct-both.jsonl', import.meta.url).pathname;
const tmp = (): string => mkdtempSync(join(tmpdir(), 'clinilora-instruct-'));

test('both forms in one file, detected per line, with an optional system prompt', () => {
  const samples = loadInstructJsonl(FIXTURE, { system: 'You are helpful.' });
  assert.equal(samples.length, 3);
  const [a, b, c] = samples;
  assert.equal(a!.user, 'What is a fever?');
  assert.equal(a!.answer, 'A body temperature above about 38 °C.');
  assert.equal(a!.meta.form, 'instruction-response');
  assert.equal(b!.user, 'Translate to plain English.\n\nPt c/o SOB.');
  assert.equal(b!.answer, 'The patient complains of shortness of breath.');
  assert.equal(b!.meta.form, 'instruction-input-output');
  assert.equal(c!.meta.line, 4); // the blank line 3 is skipped, line numbers stay true
  for (const s of samples) {
    assert.equal(s.task, 'instruct');
    assert.equal(s.system, 'You are helpful.');
    assert.equal(s.id, sampleId(s.system, s.user, s.answer));
  }
  assert.equal(loadInstructJsonl(FIXTURE)[0]!.system, '');
});

test('a line with neither form is an error naming the file, the line and the fields expected', () => {
  const f = join(tmp(), 'mine.jsonl');
  writeFileSync(f, '{"instruction": "a", "response": "b"}\n{"prompt": "a", "completion": "b"}\n');
  assert.throws(
    () => loadInstructJsonl(f),
    (e: unknown) => {
      assert.ok(e instanceof CliniloraError);
      assert.equal(e.details.line, 2);
      assert.match(e.message, new RegExp(`${f}:2`));
      assert.match(e.message, /\{"instruction", "response"\} or \{"instruction", "input", "output"\}/);
      assert.match(e.message, /found fields \["prompt","completion"\]/);
      return true;
    },
  );
});

test('bad JSON, non-string fields and empty answers are errors with the line', () => {
  const dir = tmp();
  const bad = join(dir, 'bad.jsonl');
  writeFileSync(bad, '{"instruction": "a", "response": "b"}\n\n{"instruction": "a", "response": \n');
  assert.throws(() => loadInstructJsonl(bad), (e: unknown) => e instanceof CliniloraError && e.details.line === 3 && /invalid JSON/.test(e.message));
  const num = join(dir, 'num.jsonl');
  writeFileSync(num, '{"instruction": "a", "output": 42}\n');
  assert.throws(() => loadInstructJsonl(num), (e: unknown) => e instanceof CliniloraError && e.details.field === 'output' && e.details.line === 1);
  const empty = join(dir, 'empty.jsonl');
  writeFileSync(empty, '{"instruction": "a", "response": "ok"}\n{"instruction": "b", "response": "  \\u0007 "}\n');
  assert.throws(() => loadInstructJsonl(empty), (e: unknown) => e instanceof CliniloraError && e.details.field === 'response' && e.details.line === 2);
});

test('the same prompt shares a source (so it cannot straddle splits); text is normalised', () => {
  const f = join(tmp(), 'dup.jsonl');
  writeFileSync(f, '{"instruction": "What is  BMI?", "response": "Body mass index."}\n{"instruction": "what is BMI?", "response": "Weight over height squared."}\n');
  const [a, b] = loadInstructJsonl(f);
  assert.equal(a!.source, b!.source);
  assert.notEqual(a!.id, b!.id);
  assert.equal(a!.user, 'What is BMI?');
});

test('normalizeText keeps structure, strips control characters, collapses whitespace', () => {
  const r = normalizeText('\uFEFFLine\u0000 one  \r\n  - nested\titem\u00A0 x\n\n\n\nEnd\u200B. ');
  assert.equal(r.text, 'Line one\n  - nested item x\n\nEnd.');
  assert.equal(r.controlChars, 3);
  assert.equal(r.whitespaceChanged, true);
  assert.deepEqual(normalizeText('Clean text.'), { text: 'Clean text.', controlChars: 0, whitespaceChanged: false });
});
