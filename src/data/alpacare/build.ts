/**
 * The AlpaCare task (safe medical instructions): MedInstruct-52k when a path is given, otherwise the
 * built-in corpus (the 216 clinician-written AlpaCare test questions, CC BY-NC 4.0, NON-COMMERCIAL,
 * and the 112-record instruction set, Apache-2.0). Every prompt carries the safety system prefix,
 * every target ends with the disclaimer exactly once; the adversarial set must not appear anywhere.
 */
import { fileURLToPath } from 'node:url';
import { buildManifest, sourceFile, type SplitManifest } from '../manifest.ts';
import { makeSample, type Sample } from '../sample.ts';
import { assertNoLeakage, splitSamples, type SplitRatios, type Splits } from '../split.ts';
import { instructSource, instructUser } from '../instruct.ts';
import { assertNoAdversarialInSplits, loadAdversarialSet } from './adversarial.ts';
import { DROP_REASONS, estimateTokensByChars, loadMedInstruct, type CleaningStats, type DropReason } from './medinstruct.ts';
import { SAFETY_SYSTEM_PREFIX, withDisclaimer } from './safety.ts';
import { findViolations } from '../../safety/filter.ts';

export const ALPACARE_GENERATOR_VERSION = '2';
export const ALPACARE_DEFAULT_RATIOS: SplitRatios = { train: 0.9, validation: 0.05, test: 0.05 };
/** AlpaCare-style demo sizes (absolute counts of records; scaled down when fewer exist). */
export const ALPACARE_DEMO_COUNTS: SplitRatios = { train: 5000, validation: 250, test: 250 };

const dataFile = (name: string): string => fileURLToPath(new URL(`../../../data/${name}`, import.meta.url));

interface CorpusFile {
  path: string;
  displayPath: string;
  origin: string;
  license: string;
  repairTruncated: boolean;
}

/** The built-in corpus, used when no MedInstruct-52k file is given. */
export const ALPACARE_BUILTIN: readonly CorpusFile[] = [
  {
    path: dataFile('alpacare_medinstruct_test_216.jsonl'),
    displayPath: 'data/alpacare_medinstruct_test_216.jsonl',
    origin: 'alpacare-medinstruct-test',
    license: 'CC BY-NC 4.0 (non-commercial)',
    // its GPT-4 answers were generated with a length cap: 123 of 216 stop mid-sentence
    repairTruncated: true,
  },
  {
    path: dataFile('medical_llm_pipeline_my_custom_data.jsonl'),
    displayPath: 'data/medical_llm_pipeline_my_custom_data.jsonl',
    origin: 'medical-llm-pipeline',
    license: 'Apache-2.0',
    repairTruncated: false,
  },
];

export interface AlpacareBuildOptions {
  seed?: number;
  /** Fractions (default 0.9/0.05/0.05) or absolute counts (e.g. ALPACARE_DEMO_COUNTS). */
  ratios?: SplitRatios;
  /** A MedInstruct-52k file (JSON array or JSONL); default: the built-in corpus. */
  source?: string;
  /** Token counter for the length limit (default estimateTokensByChars; pass the Phi-3 tokenizer's). */
  countTokens?: (text: string) => number;
  /** Length limit on instruction + input + output, in tokens (default 512). */
  maxTokens?: number;
  /** Repair answers cut off mid-sentence (default: on for the built-in AlpaCare test set only). */
  repairTruncated?: boolean;
  /** The adversarial set to keep out of the splits (default data/safety/adversarial.jsonl). */
  adversarialPath?: string;
  /**
   * Drop records whose answer itself gives a dose, a prescription or a diagnosis by the safety
   * post-filter's rules (default true): the assistant must not learn what it is meant never to say.
   * Many AlpaCare answers were written for clinicians and do exactly that.
   */
  dropUnsafeAnswers?: boolean;
}

export interface AlpacareDataset {
  splits: Splits;
  manifest: SplitManifest;
  /** Per-file cleaning counts (read, kept, dropped by reason, modified). */
  cleaning: CleaningStats[];
}

export function buildAlpacareDataset(opts: AlpacareBuildOptions = {}): AlpacareDataset {
  const seed = opts.seed ?? 42;
  const ratios = opts.ratios ?? ALPACARE_DEFAULT_RATIOS;
  const countTokens = opts.countTokens ?? estimateTokensByChars;
  const maxTokens = opts.maxTokens ?? 512;
  const files: CorpusFile[] = opts.source
    ? [
        {
          path: opts.source,
          displayPath: opts.source,
          origin: 'medinstruct',
          license: 'as given by the file (MedInstruct-52k: CC BY-NC 4.0, non-commercial)',
          repairTruncated: opts.repairTruncated ?? false,
        },
      ]
    : ALPACARE_BUILTIN.map((f) => ({ ...f, repairTruncated: opts.repairTruncated ?? f.repairTruncated }));

  const seen = new Set<string>(); // exact duplicates across files too
  const cleaning: CleaningStats[] = [];
  const samples: Sample[] = [];
  const dropUnsafe = opts.dropUnsafeAnswers ?? true;
  const unsafeByRule: Record<string, number> = {};
  let unsafeAnswers = 0;
  for (const f of files) {
    const { records, stats } = loadMedInstruct(f.path, { countTokens, maxTokens, repairTruncated: f.repairTruncated, seen });
    cleaning.push({ ...stats, file: f.displayPath });
    for (const r of records) {
      if (dropUnsafe) {
        const violations = findViolations(r.output);
        if (violations.length > 0) {
          unsafeAnswers++;
          for (const id of new Set(violations.map((v) => v.ruleId))) unsafeByRule[id] = (unsafeByRule[id] ?? 0) + 1;
          continue;
        }
      }
      const meta: Record<string, unknown> = { origin: f.origin, license: f.license, line: r.line, tokens: r.tokens };
      if (r.extra.id !== undefined) meta.record_id = r.extra.id;
      if (r.extra.difficulty !== undefined) meta.difficulty = r.extra.difficulty;
      if (r.extra.source_urls !== undefined) meta.source_urls = r.extra.source_urls;
      samples.push(
        makeSample('alpacare', {
          system: SAFETY_SYSTEM_PREFIX,
          user: instructUser(r.instruction, r.input),
          answer: withDisclaimer(r.output),
          // the same question (instruction + input) always lands in one split
          source: instructSource('alpacare', r.instruction, r.input),
          meta,
        }),
      );
    }
  }

  const splits = splitSamples(samples, { seed, ratios, stratify: (s) => String(s.meta.origin) });
  assertNoLeakage(splits, 'alpacare');
  assertNoAdversarialInSplits(splits, loadAdversarialSet(opts.adversarialPath), 'alpacare');

  const dropped: Record<string, number> = {};
  for (const reason of DROP_REASONS) dropped[reason] = cleaning.reduce((s, c) => s + c.dropped[reason as DropReason], 0);
  const unassigned = samples.length - splits.train.length - splits.validation.length - splits.test.length;
  if (unassigned > 0) dropped.beyond_split_counts = unassigned; // absolute counts smaller than the corpus
  dropped.unsafe_answer = unsafeAnswers;

  const manifest = buildManifest(
    {
      task: 'alpacare',
      seed,
      ratios,
      generator: { name: 'clinilora/alpacare', version: ALPACARE_GENERATOR_VERSION },
      options: {
        source: opts.source ?? null,
        max_tokens: maxTokens,
        token_counter: countTokens.name || 'custom',
        repair_truncated: files.map((f) => f.repairTruncated),
        drop_unsafe_answers: dropUnsafe,
        unsafe_answers_by_rule: unsafeByRule,
        modified: cleaning.map((c) => ({
          file: c.file,
          control_char_records: c.controlCharRecords,
          control_chars: c.controlChars,
          whitespace_records: c.whitespaceRecords,
          truncated_trimmed: c.truncatedTrimmed,
        })),
      },
      sources: files.map((f) => sourceFile(f.path, f.displayPath)),
      dropped,
    },
    splits,
  );
  return { splits, manifest, cleaning };
}
