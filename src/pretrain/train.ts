/**
 * Pretraining the base: corpus → packed sequences (loss on every token) → a randomly initialised
 * Phi-3 with every weight trainable (embedding and lm_head included) → src/train's `train()`
 * (AdamW, cosine schedule, checkpoints with exact resume, SIGINT handling) → the run recorded
 * through src/tracker → the model saved as a quantized HF directory and loaded back to check it.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { tf } from '../backend/tf.ts';
import type { BackendInfo } from '../backend/index.ts';
import { CliniloraError } from '../errors.ts';
import { Rng } from '../util/random.ts';
import { writeFileAtomic } from '../util/atomic.ts';
import { getPreset, type PhiConfig } from '../model/config.ts';
import { initPhi3 } from '../model/init.ts';
import type { Phi3ForCausalLM } from '../model/phi3.ts';
import { phi3Tokenizer } from '../data/index.ts';
import { train, latestCheckpoint, type EncodedSample, type TrainSummary, type TrainCallbacks } from '../train/index.ts';
import { openRun, resumeRun, type RunHandle } from '../tracker/index.ts';
import { buildCorpus, packCorpus, type CorpusConfig, type CorpusPart } from './corpus.ts';
import type { PretrainConfig } from './config.ts';
import { saveBase, loadBase } from './ship.ts';

export interface PretrainOptions {
  config: PretrainConfig;
  /** Where relative output paths and experiments/runs live (default: the cwd). */
  root?: string;
  /** Continue from the newest checkpoint in output.checkpointDir when there is one. */
  resume?: boolean;
  /** Record the run through src/tracker (default true). */
  record?: boolean;
  /** Save the model to output.dir at the end (default true). */
  save?: boolean;
  backend?: BackendInfo;
  callbacks?: TrainCallbacks[];
  /** Progress lines (default true). */
  progress?: boolean;
  abortSignal?: AbortSignal;
}

export interface PretrainResult {
  summary: TrainSummary;
  model: Phi3ForCausalLM;
  config: PhiConfig;
  corpus: { tokensByPart: Record<CorpusPart, number>; docsByPart: Record<CorpusPart, number>; totalTokens: number; trainSequences: number; validationSequences: number; dropped: Partial<Record<CorpusPart, number>> };
  /** Mean loss on the validation sequences: the trained float model, and the saved model loaded back. */
  validationLoss: { float: number; saved?: number };
  runId?: string;
  savedTo?: string;
  savedBytes?: number;
}

export function corpusConfigOf(c: PretrainConfig): CorpusConfig {
  const k = c.corpus;
  return {
    seed: c.seed,
    datasetSeed: k.datasetSeed,
    auditor: { n: k.auditorN, protectN: k.auditorProtectN, fresh: k.freshReports },
    heart: { incomplete: k.heartIncomplete, freshPerPatient: k.heartFreshPerPatient },
    alpacare: { maxTokens: k.alpacareMaxTokens, protectMaxTokens: k.alpacareProtectMaxTokens },
    glossaryDocs: k.glossaryDocs,
  };
}

/** The model config: the preset with the config's shape overrides (0 = keep). */
export function modelConfigOf(c: PretrainConfig): PhiConfig {
  const m = getPreset(c.model.preset);
  const o = c.model;
  if (o.hiddenSize > 0) m.hiddenSize = o.hiddenSize;
  if (o.intermediateSize > 0) m.intermediateSize = o.intermediateSize;
  if (o.numHiddenLayers > 0) m.numHiddenLayers = o.numHiddenLayers;
  if (o.numAttentionHeads > 0) { m.numAttentionHeads = o.numAttentionHeads; m.numKeyValueHeads = o.numAttentionHeads; }
  return m;
}

const asSample = (ids: Int32Array): EncodedSample => ({ ids, labels: new Uint8Array(ids.length).fill(1), promptLength: 0, answerLength: ids.length, truncated: 'none' });

/** Mean next-token loss over sequences (every token after the first a target). */
export function sequenceLoss(model: Phi3ForCausalLM, seqs: readonly Int32Array[], batchSize = 4): number {
  let sum = 0;
  let n = 0;
  for (let i = 0; i < seqs.length; i += batchSize) {
    const rows = seqs.slice(i, i + batchSize);
    const T = rows[0]!.length;
    const ids = new Int32Array(rows.length * T);
    rows.forEach((r, b) => ids.set(r, b * T));
    const labels = new Int32Array(rows.length * T).fill(1);
    const l = tf.tidy(() => model.lossFromIds({ data: ids, shape: [rows.length, T] }, { data: labels, shape: [rows.length, T] }));
    sum += l.dataSync()[0]! * rows.length * (T - 1);
    n += rows.length * (T - 1);
    l.dispose();
  }
  return sum / n;
}

const RUN_ID_FILE = 'run-id.txt';

export async function pretrain(opts: PretrainOptions): Promise<PretrainResult> {
  const c = opts.config;
  const root = resolve(opts.root ?? process.cwd());
  const at = (p: string): string => resolve(root, p);
  const log = (s: string): void => { if (opts.progress !== false) process.stderr.write(`${s}\n`); };

  const ckDir = at(c.output.checkpointDir);
  if (opts.resume !== true && latestCheckpoint(ckDir) !== undefined) {
    // A fresh run would mix its checkpoints with the old ones (and pruning keeps the highest step).
    throw new CliniloraError('E_ARG', 'the checkpoint directory holds an earlier run', { file: ckDir, field: 'output.checkpointDir', hint: 'pass --resume to continue it, or delete the directory to start over' });
  }

  const corpus = await buildCorpus(corpusConfigOf(c));
  const tok = await phi3Tokenizer();
  const packed = packCorpus(corpus.docs, tok, c.packing.seqLen);
  const nVal = c.packing.validationSequences;
  if (packed.sequences.length <= nVal) throw new RangeError(`corpus too small: ${packed.sequences.length} sequences for ${nVal} validation sequences`);
  const valSeqs = packed.sequences.slice(packed.sequences.length - nVal);
  let trainSeqs = packed.sequences.slice(0, packed.sequences.length - nVal);
  if (c.packing.maxTrainSequences > 0) trainSeqs = trainSeqs.slice(0, c.packing.maxTrainSequences);
  log(`corpus: ${packed.totalTokens} tokens, ${trainSeqs.length} train + ${valSeqs.length} validation sequences of ${c.packing.seqLen}; by part ${JSON.stringify(packed.tokensByPart)}`);

  const mc = modelConfigOf(c);
  const model = initPhi3(mc, new Rng(c.seed), { trainable: true, embedding: { trainable: true } });

  const resumeFrom = opts.resume === true ? latestCheckpoint(ckDir) : undefined;
  let run: RunHandle | undefined;
  if (opts.record !== false) {
    const backend = opts.backend !== undefined ? { name: opts.backend.name, threads: opts.backend.threads, simd: opts.backend.simd } : null;
    const idFile = join(ckDir, RUN_ID_FILE);
    if (resumeFrom !== undefined && existsSync(idFile)) run = resumeRun(readFileSync(idFile, 'utf8').trim(), { root, backend });
    else {
      run = await openRun({ config: { ...c, task: 'pretrain' } as unknown as Record<string, unknown> & { task: string; seed: number }, kind: 'train', task: 'pretrain', name: c.name, seed: c.seed, root, backend, tags: ['base', c.model.preset] });
      mkdirSync(ckDir, { recursive: true });
      writeFileAtomic(idFile, `${run.id}\n`);
    }
    log(`run record: ${run.file}`);
  }
  const cbs: TrainCallbacks[] = [...(opts.callbacks ?? [])];
  if (run !== undefined) {
    const r = run;
    cbs.push({
      onStepEnd: (i) => r.logStep({ step: i.step, loss: i.loss, lr: i.lr, tokensPerSec: i.tokensPerSec, gradNorm: i.gradNorm, epoch: i.epoch }),
      onEval: (e) => r.logEval({ step: e.step, split: 'validation', metrics: { loss: e.valLoss, perplexity: e.valPerplexity } }),
    });
  }

  let summary: TrainSummary;
  try {
    const t = c.training;
    summary = await train({
      model,
      variables: model.trainableVariables(),
      train: trainSeqs.map(asSample),
      validation: valSeqs.map(asSample),
      config: {
        batchSize: t.batchSize, maxSteps: t.maxSteps, lr: t.lr, minLr: t.minLr, schedule: t.schedule, warmupRatio: t.warmupRatio,
        weightDecay: t.weightDecay, betas: [0.9, t.beta2], maxGradNorm: t.maxGradNorm, evalEvery: t.evalEvery,
        checkpointEvery: t.checkpointEvery, keepCheckpoints: 1, byLength: false, padId: mc.padTokenId ?? 32000, seed: c.seed,
      },
      runConfig: { model: mc, corpus: corpusConfigOf(c), packing: c.packing },
      checkpointDir: ckDir,
      ...(resumeFrom !== undefined ? { resumeFrom } : {}),
      callbacks: cbs,
      progress: opts.progress !== false,
      abortSignal: opts.abortSignal,
      restoreBest: false, // pretraining: keep the last weights (the schedule's end), not an early snapshot
    });
  } catch (e) {
    run?.finish('failed', { error: e });
    throw e;
  }

  const result: PretrainResult = {
    summary, model, config: mc,
    corpus: { tokensByPart: packed.tokensByPart, docsByPart: packed.docsByPart, totalTokens: packed.totalTokens, trainSequences: trainSeqs.length, validationSequences: valSeqs.length, dropped: corpus.dropped },
    validationLoss: { float: sequenceLoss(model, valSeqs) },
    ...(run !== undefined ? { runId: run.id } : {}),
  };
  if (summary.status === 'interrupted') {
    run?.finish('interrupted');
    return result;
  }
  if (opts.save !== false) {
    const dir = at(c.output.dir);
    const written = saveBase(dir, model, { quantize: c.output.quantize, tokenizer: tok });
    const loaded = loadBase(dir);
    result.validationLoss.saved = sequenceLoss(loaded, valSeqs);
    loaded.dispose();
    result.savedTo = dir;
    result.savedBytes = written.totalBytes;
    const curve = ['step,loss', ...summary.losses.map((l, i) => `${i + 1},${l.toFixed(5)}`)].join('\n');
    writeFileAtomic(join(dir, 'loss_curve.csv'), `${curve}\n`);
    if (run !== undefined) for (const f of [...written.files, 'tokenizer.json', 'tokenizer_config.json', 'loss_curve.csv']) await run.addArtifact(join(dir, f), { kind: 'model' });
  }
  run?.finish('completed', {
    metrics: {
      final_loss: summary.finalLoss ?? NaN, val_loss_float: result.validationLoss.float,
      ...(result.validationLoss.saved !== undefined ? { val_loss_saved: result.validationLoss.saved } : {}),
      tokens_seen: summary.tokens, train_seconds: summary.elapsedMs / 1000,
      // What the corpus was: a later rebuild (card.ts) checks it still gets the same stream.
      corpus_tokens: packed.totalTokens, corpus_train_sequences: trainSeqs.length,
    },
  });
  return result;
}
