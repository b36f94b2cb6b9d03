/**
 * `clinilora generate [--adapter DIR] [--task auditor|heart-risk|alpacare] [--file F | stdin]`: one
 * answer. auditor: the input is a JSON report, validated (not JSON, a missing key or a bad value is
 * an error naming it) and the parsed category is printed beside the rule-based reference; heart-risk:
 * a patient description, with the risk read from token probabilities; alpacare: a question, answered
 * through safe generation (what the post-filter tripped on is printed).
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseTask } from '../data/index.ts';
import { parseAnswer, referenceAudit, renderPrompt, validateReport } from '../data/auditor/index.ts';
import { CLINICAL_FEATURES, HEART_USER_INSTRUCTION, heartSystemPrompt } from '../data/heart/index.ts';
import { CliniloraError } from '../errors.ts';
import { riskProbabilityFromModel } from '../eval/model-probs.ts';
import { generate } from '../model/generate.ts';
import { generationOptions, safetyConfig } from '../pipeline/evaluate.ts';
import { openModel } from '../pipeline/session.ts';
import { safeGenerate } from '../safety/generate.ts';
import { defineCommand } from './command.ts';

/** The input text: the file, or all of stdin (refused when stdin is a terminal: nothing was piped). */
export async function readInput(file: string | undefined, stdin: NodeJS.ReadStream = process.stdin): Promise<{ text: string; source: string }> {
  if (file !== undefined) {
    try {
      return { text: readFileSync(resolve(file), 'utf8'), source: resolve(file) };
    } catch (e) {
      throw new CliniloraError('E_MISSING', 'cannot read the input file', { file: resolve(file), hint: (e as Error).message });
    }
  }
  if (stdin.isTTY === true) throw new CliniloraError('E_ARG', 'no input: give --file F or pipe the text into stdin', { field: '--file' });
  const chunks: Buffer[] = [];
  for await (const c of stdin) chunks.push(c as Buffer);
  return { text: Buffer.concat(chunks).toString('utf8'), source: '<stdin>' };
}

export const generateCommand = defineCommand({
  name: 'generate',
  description: 'Answer one audit report (JSON), patient description or medical question, from --file or stdin',
  flags: {
    adapter: { type: 'string', placeholder: 'dir|run-id', description: 'LoRA adapter (PEFT directory or training run id)' },
    base: { type: 'string', placeholder: 'dir|preset:…', description: "Base model (default: the adapter's base, else models/phi3-nano)" },
    task: { type: 'string', placeholder: 'task', description: "auditor | heart-risk | alpacare (default: the adapter's task, else auditor)" },
    file: { type: 'string', short: 'f', placeholder: 'path', description: 'Input file (default: stdin)' },
    set: { type: 'string', multiple: true, placeholder: 'key=value', description: 'Override a config key, e.g. eval.maxNewTokens=64' },
  },
  async run({ flags, stdout }) {
    const task = flags.task !== undefined ? parseTask(flags.task) : undefined;
    const input = await readInput(flags.file);
    // Check the input before loading a model: a bad report fails fast.
    let report;
    if ((task ?? 'auditor') === 'auditor' && (task !== undefined || flags.adapter === undefined)) report = parseReport(input.text, input.source);
    const s = await openModel({ ...(flags.adapter !== undefined ? { adapter: flags.adapter } : {}), ...(flags.base !== undefined ? { base: flags.base } : {}), ...(task !== undefined ? { task } : {}), set: flags.set ?? [] });
    try {
      const { model, tokenizer: tok, config } = s;
      const gen = generationOptions(config);
      if (config.task === 'auditor') {
        const r = report ?? parseReport(input.text, input.source);
        const p = renderPrompt(r);
        const ids = tok.encodeChat([{ role: 'system', content: p.system }, { role: 'user', content: p.user }], { addGenerationPrompt: true });
        const [out] = generate(model, [ids], gen);
        const text = tok.decode(out!.tokens, { skipSpecial: true }).trim();
        stdout.write(`${text}\n\n`);
        stdout.write(`parsed category: ${parseAnswer(text).category ?? 'unparseable'} (rule-based reference: ${referenceAudit(r).category})\n`);
      } else if (config.task === 'heart-risk') {
        const text = input.text.trim();
        if (text === '') throw new CliniloraError('E_ARG', 'the patient description is empty', { file: input.source });
        const ids = tok.encodeChat([{ role: 'system', content: heartSystemPrompt(CLINICAL_FEATURES) }, { role: 'user', content: `${HEART_USER_INSTRUCTION}\n\n${text}` }], { addGenerationPrompt: true });
        const [out] = generate(model, [ids], gen);
        stdout.write(`${tok.decode(out!.tokens, { skipSpecial: true }).trim()}\n\n`);
        const risk = riskProbabilityFromModel(model, ids, tok);
        stdout.write(`risk probability from token probabilities: ${risk.probability.toFixed(3)} (low ${risk.levels.low.toFixed(2)}, moderate ${risk.levels.moderate.toFixed(2)}, high ${risk.levels.high.toFixed(2)})\n`);
      } else {
        const q = input.text.trim();
        if (q === '') throw new CliniloraError('E_ARG', 'the question is empty', { file: input.source });
        const [o] = safeGenerate(model, tok, [q], { generation: gen, safety: safetyConfig(config) });
        stdout.write(`${o!.text}\n`);
        if (o!.tripped) stdout.write(`\n[safety filter: ${o!.violations.map((v) => `${v.ruleId} "${v.match}"`).join('; ')}${o!.fallbackUsed ? ' → safe fallback shown' : ''}]\n`);
      }
    } finally {
      s.model.dispose();
    }
    return 0;
  },
});

/** The input as an audit report: JSON, all required keys, values in range (errors name the key). */
export function parseReport(text: string, source: string): ReturnType<typeof validateReport> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new CliniloraError('E_FORMAT', 'the report is not JSON', { file: source, expected: 'a JSON object with the report keys', hint: (e as Error).message });
  }
  return validateReport(value, { file: source });
}
