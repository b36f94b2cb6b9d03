/**
 * The shipped nano configs fit their data: every training sample of the task, encoded with the
 * config's maxLength, keeps its whole answer and its whole prompt (heart-nano once shipped a
 * maxLength shorter than every heart prompt, and training failed on the first batch).
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadConfig } from '../src/config/index.ts';
import { phi3Tokenizer } from '../src/data/tokens.ts';
import { datasetFor } from '../src/pipeline/resources.ts';
import { encodeSample } from '../src/train/batching.ts';

process.env.CLINILORA_HOME = mkdtempSync(join(tmpdir(), 'clinilora-config-fit-'));

// alpacare-nano: answers (median 282 tokens) plus the safety prefix reach 569 tokens, and maxLength 384
// cuts about a third of them, disclaimer included: known, measured in issue 4, not yet fixed.
const KNOWN: Record<string, string> = { 'alpacare-nano': 'maxLength 384 cuts about a third of the answers (issue 4 note)' };

for (const name of ['auditor-nano', 'heart-nano', 'alpacare-nano']) {
  test(`${name}: every training and test sample fits data.maxLength with its whole prompt and answer`, { todo: KNOWN[name] ?? false }, async () => {
    // The auditor's generator is sampled: 400 reports stand for the 4000 (same template, same lengths).
    const { config } = loadConfig(name, { set: name === 'auditor-nano' ? ['data.n=400'] : [] });
    const data = await datasetFor(config);
    const tok = await phi3Tokenizer();
    const cut: string[] = [];
    for (const split of ['train', 'test'] as const) {
      for (const s of data.splits[split]) {
        const e = encodeSample(s, tok, { maxLength: config.data.maxLength });
        if (e.truncated !== 'none') cut.push(`${split} ${s.id}: ${e.truncated} cut (${e.promptLength} + ${e.answerLength})`);
      }
    }
    assert.ok(data.splits.train.length > 0);
    assert.deepEqual(cut.slice(0, 5), [], `${cut.length} samples do not fit maxLength ${config.data.maxLength}`);
  });
}
