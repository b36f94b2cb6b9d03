/**
 * `clinilora data build|show <task>`: build a task's dataset under data/generated/<task>/ (or --out),
 * or print what a built one holds. Thin over src/data/index.ts; user errors are CliniloraError E_ARG
 * naming the flag and its valid values.
 */
import { parseArgs } from 'node:util';
import { CliniloraError } from '../errors.ts';
import { countLabels, sampleLabel, sampleRows, summarizeLengths, type LengthColumn } from '../data/frame.ts';
import {
  TASKS,
  TASK_OPTIONS,
  buildAndWriteDataset,
  defaultDatasetDir,
  loadTaskDataset,
  parseTask,
  phi3Tokenizer,
  type BuildDatasetOptions,
  type Task,
} from '../data/index.ts';
import { SPLIT_NAMES, type SplitName } from '../data/sample.ts';
import type { SplitRatios } from '../data/split.ts';

export const DATA_USAGE = `Usage:
  clinilora data build <task> [--seed N] [--n N] [--incomplete N] [--include-time] [--source PATH]
                              [--max-tokens N] [--ratios TRAIN,VAL,TEST] [--out DIR]
  clinilora data show <task> [--dir DIR] [--n K] [--split train|validation|test]
Tasks: ${TASKS.join(', ')}
  auditor:    --n (reports, default 5000), --max-tokens
  heart-risk: --incomplete (variants, default 100), --include-time (leaks the outcome; see data card)
  alpacare:   --source (MedInstruct-52k JSON/JSONL; default the built-in corpus), --max-tokens (default 512)
Default directory: <CLINILORA_HOME or package root>/data/generated/<task>
`;

export interface CommandIo {
  /** Where output goes (default process.stdout). */
  out?: (text: string) => void;
}

type OptionSpec = Record<string, { type: 'string' | 'boolean' }>;

const BUILD_OPTIONS = {
  seed: { type: 'string' },
  n: { type: 'string' },
  incomplete: { type: 'string' },
  'include-time': { type: 'boolean' },
  source: { type: 'string' },
  'max-tokens': { type: 'string' },
  ratios: { type: 'string' },
  out: { type: 'string' },
  help: { type: 'boolean' },
} as const satisfies OptionSpec;

const SHOW_OPTIONS = {
  dir: { type: 'string' },
  n: { type: 'string' },
  split: { type: 'string' },
  help: { type: 'boolean' },
} as const satisfies OptionSpec;

/** Flag → registry option, for the per-task check. */
const FLAG_OPTION: Record<string, keyof BuildDatasetOptions> = {
  n: 'n',
  incomplete: 'incomplete',
  'include-time': 'includeTime',
  source: 'source',
  'max-tokens': 'maxTokens',
};

export async function dataCommand(argv: string[], io: CommandIo = {}): Promise<number> {
  const out = io.out ?? ((t: string) => void process.stdout.write(t));
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help') {
    out(DATA_USAGE);
    return sub === undefined ? 2 : 0;
  }
  if (sub === 'build') return build(rest, out);
  if (sub === 'show') return show(rest, out);
  throw new CliniloraError('E_ARG', `unknown data command '${sub}'`, { field: 'data <command>', expected: 'build | show', found: sub });
}

function parse<T extends OptionSpec>(args: string[], options: T, command: string) {
  try {
    return parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (e) {
    const msg = (e as Error).message;
    const flag = /'(-{1,2}[^'\s]+)/.exec(msg)?.[1];
    const valid = Object.entries(options).map(([k, v]) => (v.type === 'string' ? `--${k} <value>` : `--${k}`));
    throw new CliniloraError('E_ARG', `clinilora data ${command}: ${msg.split('.')[0]}`, {
      field: flag ?? 'arguments',
      expected: valid.join(', '),
      found: flag ?? args.join(' '),
      hint: 'see `clinilora data --help`',
    });
  }
}

function taskOf(positionals: string[], command: string): Task {
  if (positionals.length > 1) {
    throw new CliniloraError('E_ARG', `clinilora data ${command} takes one task`, { field: '<task>', expected: TASKS.join(' | '), found: positionals.join(' ') });
  }
  return parseTask(positionals[0]);
}

function intFlag(flag: string, value: string | undefined, min: number): number | undefined {
  if (value === undefined) return undefined;
  if (!/^-?\d+$/.test(value.trim()) || Number(value) < min || !Number.isSafeInteger(Number(value))) {
    throw new CliniloraError('E_ARG', `--${flag} must be an integer >= ${min}`, { field: `--${flag}`, expected: `an integer >= ${min}`, found: JSON.stringify(value) });
  }
  return Number(value);
}

function ratiosFlag(value: string | undefined): SplitRatios | undefined {
  if (value === undefined) return undefined;
  const parts = value.split(',').map((p) => Number(p.trim()));
  if (parts.length !== 3 || parts.some((p) => !Number.isFinite(p) || p < 0)) {
    throw new CliniloraError('E_ARG', '--ratios needs three non-negative numbers', {
      field: '--ratios',
      expected: 'TRAIN,VAL,TEST fractions summing to 1 (0.8,0.1,0.1) or counts (5000,250,250)',
      found: JSON.stringify(value),
    });
  }
  return { train: parts[0]!, validation: parts[1]!, test: parts[2]! };
}

async function build(args: string[], out: (t: string) => void): Promise<number> {
  const { values: v, positionals } = parse(args, BUILD_OPTIONS, 'build');
  if (v.help === true) {
    out(DATA_USAGE);
    return 0;
  }
  const task = taskOf(positionals, 'build');
  for (const [flag, key] of Object.entries(FLAG_OPTION)) {
    if (v[flag as keyof typeof v] !== undefined && !TASK_OPTIONS[task].includes(key)) {
      const takers = TASKS.filter((t) => TASK_OPTIONS[t].includes(key));
      throw new CliniloraError('E_ARG', `--${flag} does not apply to ${task}`, {
        field: `--${flag}`,
        expected: `only with ${takers.join(' or ')}`,
        found: `task ${task}`,
      });
    }
  }
  const opts: BuildDatasetOptions = {
    seed: intFlag('seed', v.seed, 0),
    n: intFlag('n', v.n, 1),
    incomplete: intFlag('incomplete', v.incomplete, 0),
    includeTime: v['include-time'],
    source: v.source,
    maxTokens: intFlag('max-tokens', v['max-tokens'], 1),
    ratios: ratiosFlag(v.ratios),
  };
  const started = Date.now();
  const ds = await buildAndWriteDataset(task, opts, v.out ?? defaultDatasetDir(task));
  const m = ds.manifest;
  const total = SPLIT_NAMES.reduce((s, n) => s + m.counts[n], 0);
  const dropped = Object.entries(m.dropped);
  out(
    [
      `${task}: ${total} samples (${SPLIT_NAMES.map((n) => `${n} ${m.counts[n]}`).join(', ')}), seed ${m.seed}`,
      `dropped: ${dropped.length > 0 ? dropped.map(([k, n]) => `${k} ${n}`).join(', ') : 'none'}`,
      `manifest sha256: ${m.sha256}`,
      `written to: ${ds.dir} (${((Date.now() - started) / 1000).toFixed(1)} s)`,
      '',
    ].join('\n'),
  );
  return 0;
}

const pad = (s: string | number, w: number): string => String(s).padStart(w);
const fmt = (x: number): string => (Number.isInteger(x) ? String(x) : x.toFixed(1));

async function show(args: string[], out: (t: string) => void): Promise<number> {
  const { values: v, positionals } = parse(args, SHOW_OPTIONS, 'show');
  if (v.help === true) {
    out(DATA_USAGE);
    return 0;
  }
  const task = taskOf(positionals, 'show');
  const k = intFlag('n', v.n, 0) ?? 2;
  const split = (v.split ?? 'train') as SplitName;
  if (!SPLIT_NAMES.includes(split)) {
    throw new CliniloraError('E_ARG', `unknown split '${split}'`, { field: '--split', expected: SPLIT_NAMES.join(' | '), found: JSON.stringify(v.split) });
  }
  const ds = loadTaskDataset(task, v.dir ?? defaultDatasetDir(task));
  const m = ds.manifest;
  const tok = await phi3Tokenizer();
  const rows = sampleRows(ds.splits, { tokenizer: tok });
  const lines: string[] = [
    `${task} dataset at ${ds.dir}`,
    `seed ${m.seed}, generator ${m.generator.name} ${m.generator.version}, manifest sha256 ${m.sha256}`,
    `samples: ${SPLIT_NAMES.map((n) => `${n} ${m.counts[n]}`).join(', ')} (total ${rows.length})`,
  ];
  const dropped = Object.entries(m.dropped).filter(([, n]) => n > 0);
  if (dropped.length > 0) lines.push(`dropped: ${dropped.map(([r, n]) => `${r} ${n}`).join(', ')}`);

  const counts = countLabels(rows);
  const w = Math.max(5, ...counts.map((c) => c.label.length));
  lines.push('', `${'label'.padEnd(w)}  ${pad('train', 6)}  ${pad('validation', 10)}  ${pad('test', 6)}  ${pad('total', 6)}`);
  for (const c of counts) lines.push(`${c.label.padEnd(w)}  ${pad(c.train, 6)}  ${pad(c.validation, 10)}  ${pad(c.test, 6)}  ${pad(c.total, 6)}`);

  lines.push('', 'tokens (Phi-3 chat format)   count    mean   min   p50   p95   max');
  for (const col of ['prompt_tokens', 'answer_tokens', 'total_tokens'] as LengthColumn[]) {
    const s = summarizeLengths(rows, col);
    lines.push(`${col.padEnd(27)}${pad(s.count, 7)}${pad(fmt(s.mean), 8)}${pad(s.min, 6)}${pad(s.p50, 6)}${pad(s.p95, 6)}${pad(s.max, 6)}`);
  }

  const examples = ds.splits[split].slice(0, k);
  examples.forEach((s, i) => {
    lines.push('', `=== example ${i + 1}/${examples.length}: ${split} ${s.id} (${sampleLabel(s)}, source ${s.source}) ===`);
    lines.push('--- system ---', s.system, '--- user ---', s.user, '--- answer ---', s.answer);
  });
  out(`${lines.join('\n')}\n`);
  return 0;
}
