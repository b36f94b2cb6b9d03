/**
 * MODEL_CARD.md and README.md of the shipped base, written from the run's own numbers (nothing is
 * typed in by hand: rerunning the script rewrites the card to match the new weights).
 */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { CliniloraError } from '../errors.ts';
import { writeFileAtomic } from '../util/atomic.ts';
import { numParameters } from '../model/phi3.ts';
import { readRun } from '../tracker/index.ts';
import { phi3Tokenizer } from '../data/index.ts';
import { buildCorpus, packCorpus, CORPUS_PARTS, type CorpusPart } from './corpus.ts';
import type { PretrainConfig } from './config.ts';
import { corpusConfigOf, modelConfigOf, type PretrainResult } from './train.ts';

export interface CardInfo {
  result: Omit<PretrainResult, 'model'>;
  config: PretrainConfig;
  configPath?: string;
  backend?: { name: string; threads: number } | null;
  /** Validation loss at each evaluation. */
  evals?: Array<{ step: number; loss: number }>;
}

/**
 * The card's inputs rebuilt from a finished run (its record, the saved folder and the corpus, which is
 * deterministic): `main.ts --card-only` rewrites the card without training again.
 */
export async function cardInfoFromRun(config: PretrainConfig, root: string, configPath?: string): Promise<CardInfo> {
  const runId = readFileSync(resolve(root, config.output.checkpointDir, 'run-id.txt'), 'utf8').trim();
  const rec = readRun(runId, { root });
  const m = rec.metrics ?? {};
  const losses = rec.steps.map((x) => x.loss ?? NaN);
  const corpus = await buildCorpus(corpusConfigOf(config));
  const packed = packCorpus(corpus.docs, await phi3Tokenizer(), config.packing.seqLen);
  if (m['corpus_tokens'] !== undefined && m['corpus_tokens'] !== packed.totalTokens) {
    throw new CliniloraError('E_FORMAT', 'the corpus built now differs from the one the run trained on', {
      file: runId, field: 'metrics.corpus_tokens', expected: String(m['corpus_tokens']), found: String(packed.totalTokens),
      hint: 'the task data or corpus code changed since the run: train again (the card would describe other data)',
    });
  }
  const nVal = config.packing.validationSequences;
  let nTrain = packed.sequences.length - nVal;
  if (config.packing.maxTrainSequences > 0) nTrain = Math.min(nTrain, config.packing.maxTrainSequences);
  return {
    config, configPath, backend: rec.env.backend,
    evals: rec.evals.filter((e) => e.step !== null && e.metrics['loss'] !== undefined).map((e) => ({ step: e.step!, loss: e.metrics['loss']! })),
    result: {
      summary: {
        status: 'completed', step: losses.length, totalSteps: config.training.maxSteps, losses, finalLoss: losses[losses.length - 1] ?? null,
        bestValLoss: null, bestStep: null, restoredBest: false, tokens: m['tokens_seen'] ?? NaN, elapsedMs: (m['train_seconds'] ?? NaN) * 1000,
      },
      config: modelConfigOf(config),
      corpus: { tokensByPart: packed.tokensByPart, docsByPart: packed.docsByPart, totalTokens: packed.totalTokens, trainSequences: nTrain, validationSequences: nVal, dropped: corpus.dropped },
      validationLoss: { float: m['val_loss_float'] ?? NaN, ...(m['val_loss_saved'] !== undefined ? { saved: m['val_loss_saved'] } : {}) },
      runId, savedTo: resolve(root, config.output.dir),
    },
  };
}

const PART_TEXT: Record<CorpusPart, string> = {
  'auditor-train': 'auditor prompts (system + user turn with the report JSON) of the auditor TRAIN split; no assistant turn',
  'auditor-fresh': 'reports generated from the corpus seed (a stream no dataset uses), as plain `Report:` text',
  'heart-train': 'heart-risk prompts (system + narrative) of the TRAIN split; no risk answer',
  'heart-fresh': 'more narratives of TRAIN patients only, from another random stream',
  'alpacare-train': 'AlpaCare TRAIN-split questions with their answers (chat format, safety system prefix)',
  glossary: 'monitoring handbook from a seeded template grammar (src/pretrain/glossary.ts)',
};

/** A few points of the loss curve: mean over windows of ~5% of the steps. */
export function lossCurveSummary(losses: readonly number[]): Array<{ step: number; loss: number }> {
  if (losses.length === 0) return [];
  const w = Math.max(1, Math.round(losses.length / 20));
  const marks = [w, Math.round(losses.length * 0.1), Math.round(losses.length * 0.25), Math.round(losses.length * 0.5), Math.round(losses.length * 0.75), losses.length];
  return [...new Set(marks.filter((m) => m >= 1))].map((end) => {
    const win = losses.slice(Math.max(0, end - w), end);
    return { step: end, loss: win.reduce((a, b) => a + b, 0) / win.length };
  });
}

const mb = (n: number): string => `${(n / 1e6).toFixed(1)} MB`;

export function modelCardText(info: CardInfo): string {
  const { result: r, config: c } = info;
  const s = r.summary;
  const mc = r.config;
  const secs = s.elapsedMs / 1000;
  const files = readdirSync(r.savedTo!).filter((f) => !f.startsWith('.') && !f.endsWith('.md')).sort();
  const size = files.reduce((a, f) => a + statSync(join(r.savedTo!, f)).size, 0);
  const rows = CORPUS_PARTS.map((p) => `| ${p} | ${r.corpus.docsByPart[p]} | ${r.corpus.tokensByPart[p]} | ${(100 * r.corpus.tokensByPart[p] / r.corpus.totalTokens).toFixed(1)}% | ${PART_TEXT[p]} |`);
  const points = lossCurveSummary(s.losses);
  const curve = points.map((p) => `| ${p.step} | ${p.loss.toFixed(3)} |`);
  const curveEnd = points[points.length - 1]?.loss ?? NaN;
  const window = Math.max(1, Math.round(s.losses.length / 20));
  const evals = (info.evals ?? []).map((e) => `${e.step}: ${e.loss.toFixed(3)}`).join(', ');
  const v = r.validationLoss;
  const cmd = `node --import tsx src/pretrain/main.ts --config ${info.configPath ?? 'experiments/base/phi3-nano.yaml'}`;
  return `# phi3-nano — the clinilora teaching base

A ${(numParameters(mc) / 1e6).toFixed(1)} M-parameter Phi-3 (\`Phi3ForCausalLM\`, HF layout) with the real Phi-3 tokenizer
(vocabulary ${mc.vocabSize}), trained from scratch by this project on CPU, on text that holds **no task answers**,
so that the base alone cannot do the auditor or heart-risk tasks and a LoRA adapter visibly does the work.

**Not for clinical use.** This is a teaching and CPU-experiment model. It knows report layouts, narrative
phrasing and a glossary of monitoring terms; it has no medical knowledge worth the name and must never inform
a decision about a patient.

## Shape and files
hidden ${mc.hiddenSize}, intermediate ${mc.intermediateSize}, ${mc.numHiddenLayers} layers, ${mc.numAttentionHeads} heads (head dim ${mc.hiddenSize / mc.numAttentionHeads}),
context ${mc.maxPositionEmbeddings}, RoPE θ ${mc.ropeTheta}, untied lm_head; special tokens as Phi-3-mini-4k-instruct.

| file | bytes |
|---|---|
${files.map((f) => `| ${f} | ${statSync(join(r.savedTo!, f)).size} |`).join('\n')}

Total ${mb(size)}. \`model.safetensors\`: the block linears (\`qkv_proj\`, \`o_proj\`, \`gate_up_proj\`, \`down_proj\`) are
bitsandbytes LLM.int8 records (\`weight\` int8 + \`SCB\` row scales; \`quantization_config\` in config.json, so
transformers + bitsandbytes read them as an 8-bit model); \`embed_tokens\`, \`lm_head\` and the norms are F16.
Load it here with \`loadPhi3('models/phi3-nano')\` (src/model/checkpoint.ts).

Quantization cost, mean next-token loss on ${r.corpus.validationSequences} held-out corpus sequences of ${c.packing.seqLen} tokens:
float32 weights after training **${v.float.toFixed(4)}**, this folder loaded back **${v.saved?.toFixed(4) ?? 'n/a'}**
(difference ${v.saved !== undefined ? `${v.saved >= v.float ? '+' : ''}${(v.saved - v.float).toFixed(5)}` : 'n/a'} nats/token).

## Data
${r.corpus.totalTokens} tokens (Phi-3 tokenizer, \`<|endoftext|>\` between documents), packed into ${r.corpus.trainSequences} training
and ${r.corpus.validationSequences} validation sequences of ${c.packing.seqLen} tokens. Built by \`src/pretrain/corpus.ts\`, deterministic from
the config (corpus seed ${c.seed}, task datasets seed ${c.corpus.datasetSeed}).

| part | documents | tokens | share | what |
|---|---|---|---|---|
${rows.join('\n')}

What is kept out, and checked by \`test/pretrain-corpus.test.ts\`:
- every auditor and heart-risk **target answer** (category, explanation, risk level, key factors) of every split;
- the auditor **validation and test reports** of the dataset the nano config trains on (n ${c.corpus.auditorN}) and of the other
  sizes listed (${c.corpus.auditorProtectN.join(', ')}): a different n reshuffles the split, so their held-out reports are excluded too;
- heart-risk **validation and test patients** (their narratives, in any wording);
- AlpaCare **validation and test** questions (of length limits ${[c.corpus.alpacareMaxTokens, ...c.corpus.alpacareProtectMaxTokens].join(' and ')}) and the adversarial safety set.

Documents dropped by these rules: ${JSON.stringify(r.corpus.dropped)} (train-split documents that another split layout holds out).

Why a glossary, and why it does not leak: words that occur only in answers ("Category", the eight labels,
"Explanation", "Recommendation", remedy names) would never be prediction targets while the base trains, so their
lm_head rows would stay at their random init and LoRA alone would have to lift them (FACTS.md, "Learnability of
the auditor task at nano scale"). The handbook defines the report metrics (AUC, ECE, Brier, PSI drift, missing
rate, label shift, positive rate, data integrity issues, train-eval gap), describes each category in general
terms and names the usual remedies (Platt scaling, isotonic regression, retraining on recent data, a pipeline
audit, class weights, regularisation, rollback), some entries in a \`Category: … / Explanation: …\` card layout so
those words appear as targets. It holds **no number at all** (so none of the rule thresholds), no report, no
sentence of the auditor's explanation templates (tested), and not the rule priority order: it says what a
category means, never which report belongs to it.

## Training
${s.step} steps of ${c.training.batchSize} × ${c.packing.seqLen} tokens, loss on every token; **${s.tokens} tokens seen**
(${(s.tokens / (r.corpus.trainSequences * c.packing.seqLen)).toFixed(2)} epochs). AdamW (β ${0.9}/${c.training.beta2}, weight decay ${c.training.weightDecay}),
lr ${c.training.lr} with ${+(c.training.warmupRatio * 100).toFixed(2)}% warmup and ${c.training.schedule} decay to ${c.training.minLr}, gradient-norm clip
${c.training.maxGradNorm}; all weights trainable (embedding and lm_head included); init as transformers' (normal 0.02), seed ${c.seed}.
Backend ${info.backend?.name ?? 'unknown'}${info.backend ? ` (${info.backend.threads} threads)` : ''}, ${(secs / 60).toFixed(1)} minutes wall time on a shared 2-core CPU,
${Math.round(s.tokens / secs)} tokens/s on average (evaluations and checkpoints included).

Final loss: validation **${v.float.toFixed(4)}** nats/token (the ${r.corpus.validationSequences} held-out sequences, after the last step); training
${curveEnd.toFixed(3)} (mean of the last ${window} steps; a single step's loss swings with the mix of corpus parts in its batch, the
last one was ${s.finalLoss?.toFixed(4)}). Loss curve (mean over a window of ~5% of the steps ending at the step shown; every
step is in \`loss_curve.csv\` and in the run record):

| step | loss |
|---|---|
${curve.join('\n')}
${evals !== '' ? `\nValidation loss by step: ${evals}.\n` : ''}
## License
Weights: MIT, as the project. Training data: the auditor reports and the handbook are generated by this project
(MIT); heart-failure narratives derive from the UCI heart failure clinical records (Chicco & Jurman 2020, CC BY 4.0);
the instruction text includes AlpaCare MedInstruct records, **CC BY-NC 4.0** (non-commercial), and the
medical-llm-pipeline sample (Apache-2.0) — see data/SOURCES.md. The AlpaCare answers are GPT-4 outputs under
CC BY-NC 4.0; weights trained on them are arguably a derived work: treat these weights as **non-commercial**
(research and teaching) unless you retrain without the AlpaCare part (${'`'}alpacare-train${'`'} in src/pretrain/corpus.ts).
The MIT grant covers the project's own contribution, not rights it does not hold.

## Intended use
Teaching and CPU experiments with LoRA on quantized Phi-3-shaped models: the auditor, heart-risk and AlpaCare
tasks of this project. Not for clinical use, not for medical advice, not a general language model.

## Reproduce
\`\`\`
${cmd}
\`\`\`
Config: \`${info.configPath ?? 'experiments/base/phi3-nano.yaml'}\`; run record: \`experiments/runs/${r.runId ?? '<id>'}/run.json\` (config, seed,
git commit, backend, every step's loss/lr/tokens per second, the files' sha256). Same backend and seed give the same
loss curve; an interrupted run continues with \`--resume\`.
`;
}

export function writeModelCard(dir: string, info: CardInfo): void {
  writeFileAtomic(join(dir, 'MODEL_CARD.md'), modelCardText(info));
  writeFileAtomic(join(dir, 'README.md'), `# phi3-nano\n\nThe project's CPU teaching base (Phi-3 architecture and tokenizer, ${(numParameters(info.result.config) / 1e6).toFixed(1)} M parameters,\nint8 block linears). Not for clinical use. See [MODEL_CARD.md](MODEL_CARD.md) for data, training, license and how to\nreproduce it.\n\n\`\`\`ts\nimport { loadPhi3 } from 'clinilora';\nconst model = loadPhi3('models/phi3-nano');\n\`\`\`\n`);
}
