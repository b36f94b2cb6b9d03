/**
 * The experiment config, declared once (nanoGPT's GPTConfig, mlx-lm's TrainingArgs): every field with
 * its default, its accepted values and a comment. The type `CliniloraConfig` and `DEFAULT_CONFIG` are
 * derived from this spec; src/config/load.ts layers defaults < preset < YAML file < `--set`.
 * LoRA fields use PEFT's names (camelCase), so `config.lora` is a valid partial `LoraConfig`.
 */
import { GENERATION_PRESET_NAMES, type GenerationPresetName } from './presets.ts';
import { bool, choice, defaultsOf, int, nullable, num, numRecord, str, strList, type ValueOf } from './spec.ts';

export const CONFIG_TASKS = ['auditor', 'heart-risk', 'alpacare'] as const;

export const CONFIG_SPEC = {
  /** Which task's data, prompt format and evaluation to use. */
  task: choice(CONFIG_TASKS, 'auditor'),
  /** Master seed: data split, adapter init, dropout, batch order and sampling all derive from it. */
  seed: int(42, { min: 0 }),
  /** Compute backend: 'auto' tries tensorflow, then wasm, then cpu (src/backend). */
  backend: choice(['auto', 'tensorflow', 'wasm', 'cpu'] as const, 'auto'),
  /** wasm threads; null = the backend's default (all cores, at most 8). */
  threads: nullable(int(1, { min: 1 })),
  /** Where checkpoints, adapters and predictions go; null = the run's directory experiments/runs/<id>/. */
  outDir: nullable(str('out')),
  model: {
    /**
     * The base: a directory in HF layout (absolute, or relative to the package root, else to the working
     * directory: 'models/phi3-nano', a downloaded Phi-3-mini), or `preset:<name>[?key=value&...]` for a
     * randomly initialised model of a shape preset (tests, smoke runs): keys hiddenSize, intermediateSize,
     * numHiddenLayers, numAttentionHeads, numKeyValueHeads, maxPositionEmbeddings, initializerRange, seed
     * (src/pipeline/base.ts). Checked when a run starts: a missing directory is an error naming it.
     */
    base: str('models/phi3-nano'),
    /** Quantization of the frozen base linears: 'int8' (LLM.int8) or 'nf4' (QLoRA). */
    quant: choice(['none', 'int8', 'nf4'] as const, 'none'),
    /** nf4 only: quantize the per-block absmax constants too (QLoRA double quantization). */
    doubleQuant: bool(true),
    /** int8 only: activation columns with any |x| >= this take the float path (transformers' default 6.0). */
    int8Threshold: num(6.0, { gt: 0 }),
  },
  lora: {
    /** Adapter rank (PEFT `r`). */
    r: int(16, { min: 1 }),
    /** Scaling numerator (PEFT `lora_alpha`): scaling = loraAlpha / r (or / √r with useRslora). */
    loraAlpha: num(32, { gt: 0 }),
    /** Dropout on the adapter's input (PEFT `lora_dropout`). */
    loraDropout: num(0.05, { min: 0, lt: 1 }),
    /** Linear names to adapt (PEFT `target_modules`): Phi-3's qkv_proj, o_proj, gate_up_proj, down_proj, or 'all-linear'. */
    targetModules: strList(['qkv_proj', 'o_proj']),
    /** rsLoRA scaling loraAlpha / √r. */
    useRslora: bool(false),
  },
  data: {
    /** Dataset directory; null = data/generated/<task> under CLINILORA_HOME (built on first use). */
    dir: nullable(str('data/generated/auditor')),
    /** auditor: reports to generate; null = the task's default. */
    n: nullable(int(5000, { min: 1 })),
    /** heart-risk: incomplete-input variants; null = the task's default. */
    incomplete: nullable(int(100, { min: 0 })),
    /** heart-risk: mention follow-up time (leaks the outcome: off by default). */
    includeTime: bool(false),
    /** alpacare: a MedInstruct-52k JSON/JSONL file; null = the built-in corpus. */
    source: nullable(str('data.jsonl')),
    /** auditor, alpacare: drop samples longer than this many tokens when building; null = keep all. */
    maxTokens: nullable(int(512, { min: 1 })),
    /** Split fractions (sum 1) or counts; null = the task's own. */
    ratios: nullable(numRecord(['train', 'validation', 'test'] as const, { train: 0.9, validation: 0.05, test: 0.05 }, { min: 0 })),
    /** Training sequences are truncated to this many tokens (prompt + answer). */
    maxLength: int(512, { min: 8 }),
    /** Use at most this many training samples (quick runs); null = all. */
    maxTrainSamples: nullable(int(1000, { min: 1 })),
  },
  training: {
    /** Passes over the training split; ignored when maxSteps is set. */
    epochs: nullable(num(1, { gt: 0 }), 1),
    /** Optimizer steps to run; wins over epochs when set. */
    maxSteps: nullable(int(1000, { min: 1 })),
    /** Sequences per micro-batch. */
    batchSize: int(4, { min: 1 }),
    /** Micro-batches per optimizer step (effective batch = batchSize × gradAccum). */
    gradAccum: int(1, { min: 1 }),
    /** Peak learning rate (AdamW). */
    lr: num(1e-4, { gt: 0 }),
    /** Decoupled weight decay (AdamW) on the adapter weights. */
    weightDecay: num(0, { min: 0 }),
    /** AdamW β1. */
    adamBeta1: num(0.9, { min: 0, lt: 1 }),
    /** AdamW β2. */
    adamBeta2: num(0.999, { min: 0, lt: 1 }),
    /** AdamW ε. */
    adamEps: num(1e-8, { gt: 0 }),
    /** Share of the total steps spent warming the lr up linearly from 0. */
    warmupRatio: num(0.1, { min: 0, max: 1 }),
    /** Decay after warmup, to 0 at the last step. */
    schedule: choice(['linear', 'cosine'] as const, 'linear'),
    /** Clip the global gradient norm to this; null = no clipping. */
    maxGradNorm: nullable(num(1, { gt: 0 }), 1),
    /**
     * Loss weight of each training answer's first line against 1 for the rest (auditor: the
     * `Category:` line, ~5 of ~100 answer tokens). 1 = the plain mean over answer tokens. Validation
     * loss is always the plain mean.
     */
    firstLineWeight: num(1, { gt: 0 }),
    /** Batch sequences of similar length together (less padding). */
    groupByLength: bool(true),
    /**
     * Recompute each decoder layer in the backward instead of keeping its activations (HF
     * `gradient_checkpointing`): same gradients, ~1/3 more compute, activation memory of one layer.
     * What lets a Phi-3-mini step fit in a few GB.
     */
    gradientCheckpointing: bool(false),
    /** Evaluate the validation loss every N optimizer steps; null = at the end of each epoch. */
    evalEvery: nullable(int(200, { min: 1 })),
    /** Validation samples per periodic evaluation; null = the whole validation split. */
    evalSamples: nullable(int(100, { min: 1 })),
    /** Stop after this many evaluations without improvement; null = no early stopping. */
    patience: nullable(int(3, { min: 1 })),
    /** Write a checkpoint (adapter, optimizer, rng, data position) every N steps; null = only at the end. */
    checkpointEvery: nullable(int(500, { min: 1 }), 500),
    /** Log loss/lr/tokens per second every N steps. */
    logEvery: int(10, { min: 1 }),
  },
  eval: {
    /** Generation preset the settings below start from (src/config/presets.ts). */
    preset: choice(GENERATION_PRESET_NAMES as unknown as readonly [GenerationPresetName, ...GenerationPresetName[]], 'greedy'),
    /** Tokens to generate at most. */
    maxNewTokens: int(256, { min: 1 }),
    /** 0 = greedy. */
    temperature: num(0, { min: 0 }),
    /** Nucleus sampling threshold (1 = off). */
    topP: num(1, { gt: 0, max: 1 }),
    /** Top-k sampling (0 = off). */
    topK: int(0, { min: 0 }),
    /** Penalty on tokens already generated (1 = off). */
    repetitionPenalty: num(1, { gt: 0 }),
    /** Which split to evaluate on. */
    split: choice(['test', 'validation'] as const, 'test'),
    /** Evaluate at most this many samples; null = the whole split. */
    n: nullable(int(100, { min: 1 })),
    /** Prompts generated together (left padding). */
    batchSize: int(8, { min: 1 }),
    /** alpacare: run the forbidden-content post-filter (with the safe fallback) on outputs. */
    postFilter: bool(true),
    /** alpacare: extra forbidden regular expressions, added to the built-in list. */
    forbiddenPatterns: strList([]),
  },
};

/** The resolved experiment config: a plain JSON object (saved in every run record). */
export type CliniloraConfig = ValueOf<typeof CONFIG_SPEC>;
export type ConfigTask = CliniloraConfig['task'];

/** A fresh copy of the defaults. */
export function defaultConfig(): CliniloraConfig {
  return defaultsOf(CONFIG_SPEC);
}
