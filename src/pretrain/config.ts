/**
 * The base-model pretraining config (experiments/base/*.yaml): its own small spec, kept apart from
 * the fine-tuning CONFIG_SPEC (experiments/configs/) because it describes a different job. Same
 * habits: typed defaults with a comment each, YAML file < `--set a.b=v`, an unknown key or a wrong
 * type is an error naming the file and the key.
 */
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { CliniloraError } from '../errors.ts';
import { parseSetItem } from '../config/load.ts';
import { bool, choice, defaultsOf, describeFound, int, isLeaf, num, str, type Leaf, type Spec, type ValueOf } from '../config/spec.ts';

function intList(def: number[]): Leaf<number[]> {
  return { kind: 'leaf', default: def, expected: 'a list of integers', accepts: (v: unknown): v is number[] => Array.isArray(v) && v.every((x) => Number.isInteger(x)) };
}

export const PRETRAIN_SPEC = {
  /** Run name in the tracker. */
  name: str('base-phi3-nano'),
  /** Seeds the model init, data order and the corpus's own streams. */
  seed: int(1234, { min: 0 }),
  /** 'auto' | 'wasm' | 'cpu' | 'tensorflow' (src/backend). */
  backend: choice(['auto', 'wasm', 'cpu', 'tensorflow'] as const, 'auto'),
  model: {
    /** A src/model preset; the tokenizer's vocabulary (32064) is kept. */
    preset: str('phi3-nano'),
    /** Shape overrides (0 = the preset's value); tests use a tiny model. */
    hiddenSize: int(0, { min: 0 }),
    intermediateSize: int(0, { min: 0 }),
    numHiddenLayers: int(0, { min: 0 }),
    numAttentionHeads: int(0, { min: 0 }),
  },
  corpus: {
    /** Seed of the task datasets whose train splits are read (the nano configs use 42). */
    datasetSeed: int(42, { min: 0 }),
    /** Auditor dataset size whose train split is used (auditor-nano: 4000). */
    auditorN: int(4000, { min: 1 }),
    /** Other auditor dataset sizes whose held-out reports are kept out too. */
    auditorProtectN: intList([5000]),
    /** Reports generated from the corpus seed (never in any dataset). */
    freshReports: int(1200, { min: 0 }),
    heartIncomplete: int(100, { min: 0 }),
    /** Extra narratives per train patient. */
    heartFreshPerPatient: int(3, { min: 0 }),
    /** AlpaCare length limit of the dataset whose train split is used (alpacare-nano: 384). */
    alpacareMaxTokens: int(384, { min: 16 }),
    alpacareProtectMaxTokens: intList([512]),
    /** Monitoring-handbook documents (glossary.ts). */
    glossaryDocs: int(1000, { min: 0 }),
  },
  packing: {
    /** Tokens per training sequence. */
    seqLen: int(256, { min: 8 }),
    /** Sequences held out for validation loss (taken from the end of the shuffled stream). */
    validationSequences: int(16, { min: 1 }),
    /** Use at most this many training sequences (0 = all); tests use a handful. */
    maxTrainSequences: int(0, { min: 0 }),
  },
  training: {
    batchSize: int(4, { min: 1 }),
    maxSteps: int(300, { min: 1 }),
    lr: num(2e-3, { gt: 0 }),
    minLr: num(1e-4, { min: 0 }),
    warmupRatio: num(0.05, { min: 0, lt: 1 }),
    schedule: choice(['linear', 'cosine', 'constant'] as const, 'cosine'),
    weightDecay: num(0.1, { min: 0 }),
    beta2: num(0.95, { gt: 0, lt: 1 }),
    maxGradNorm: num(1.0, { min: 0 }),
    evalEvery: int(50, { min: 0 }),
    checkpointEvery: int(50, { min: 0 }),
  },
  output: {
    /** Where the shipped model goes (HF directory). */
    dir: str('models/phi3-nano'),
    /** Resumable checkpoints (large: weights + AdamW moments; keep out of git). */
    checkpointDir: str('data/generated/pretrain/phi3-nano'),
    /** Linear layers (not lm_head) as bitsandbytes int8 records; embed/lm_head as F16. */
    quantize: bool(true),
  },
} satisfies Spec;

export type PretrainConfig = ValueOf<typeof PRETRAIN_SPEC>;

function apply(spec: Spec, target: Record<string, unknown>, value: unknown, path: string[], file: string): void {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new CliniloraError('E_CONFIG', 'expected a mapping', { file, field: path.join('.') || '<root>', expected: 'a mapping', found: describeFound(value) });
  }
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    const here = [...path, k];
    const s = spec[k];
    if (s === undefined) {
      throw new CliniloraError('E_CONFIG', `unknown key '${here.join('.')}'`, { file, field: here.join('.'), expected: `one of ${Object.keys(spec).join(', ')}` });
    }
    if (isLeaf(s)) {
      if (!s.accepts(v)) throw new CliniloraError('E_CONFIG', `wrong type for '${here.join('.')}'`, { file, field: here.join('.'), expected: s.expected, found: describeFound(v) });
      target[k] = structuredClone(v);
    } else apply(s, target[k] as Record<string, unknown>, v, here, file);
  }
}

/** Defaults < the YAML file (when given) < `--set a.b=v` items. */
export function loadPretrainConfig(path?: string, sets: readonly string[] = []): PretrainConfig {
  const cfg = defaultsOf(PRETRAIN_SPEC) as unknown as Record<string, unknown>;
  if (path !== undefined) {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch {
      throw new CliniloraError('E_MISSING', 'pretraining config not found', { file: path, hint: 'e.g. experiments/base/phi3-nano.yaml' });
    }
    let doc: unknown;
    try {
      doc = parse(text);
    } catch (e) {
      throw new CliniloraError('E_CONFIG', `not valid YAML: ${(e as Error).message}`, { file: path });
    }
    apply(PRETRAIN_SPEC, cfg, doc ?? {}, [], path);
  }
  for (const item of sets) {
    const { path: keys, value } = parseSetItem(item);
    let nested: unknown = value;
    for (let i = keys.length - 1; i >= 0; i--) nested = { [keys[i]!]: nested };
    apply(PRETRAIN_SPEC, cfg, nested, [], `--set ${item}`);
  }
  return cfg as unknown as PretrainConfig;
}
