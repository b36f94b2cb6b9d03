/**
 * `clinilora review export|import`: the human review protocol (docs/REVIEW.md), thin over src/review.
 */
import { CliniloraError } from '../errors.ts';
import { exportReview } from '../review/export.ts';
import { importReview } from '../review/import.ts';
import type { AnswerSource } from '../review/items.ts';
import { formatReviewTable } from '../review/table.ts';
import { defineCommand, parseCommandArgs, renderCommandHelp, type CommandDef, type FlagDefs } from './command.ts';

type Io = { stdout: NodeJS.WritableStream; stderr: NodeJS.WritableStream };

const HOME = { home: { type: 'string', placeholder: 'dir', description: 'Where experiments/ lives (default CLINILORA_HOME or the package root)' } } as const satisfies FlagDefs;

function int(v: string | undefined, flag: string, required: boolean): number | undefined {
  if (v === undefined) {
    if (required) throw new CliniloraError('E_ARG', `${flag} is required`, { field: flag, expected: 'an integer >= 1', hint: "see 'clinilora review export --help'" });
    return undefined;
  }
  if (!/^\d+$/.test(v)) throw new CliniloraError('E_ARG', `bad ${flag}`, { field: flag, expected: 'a non-negative integer', found: v });
  return Number(v);
}

const exportCmd = defineCommand({
  name: 'review export',
  description: 'Write blinded, randomized review packets (CSV + HTML form per reviewer) and a private key for a run with predictions',
  positionals: [{ name: 'run', description: 'Run id (or unique prefix, or path to run.json) of an AlpaCare eval or train run', required: true }],
  flags: {
    reviewers: { type: 'string', placeholder: 'N', description: 'Number of reviewers (packets)' },
    'per-reviewer': { type: 'string', placeholder: 'K', description: 'Items per reviewer' },
    seed: { type: 'string', placeholder: 'S', description: "Seed for item choice, ids and order (default the run's seed)" },
    out: { type: 'string', short: 'o', placeholder: 'dir', description: 'Packets folder (default <home>/experiments/reviews/<review>/packets)' },
    key: { type: 'string', placeholder: 'file', description: 'Key file (default <home>/experiments/reviews/<review>/key.json); never send it to reviewers' },
    answer: { type: 'string', placeholder: 'filtered|raw', description: "Text shown: post-filter output or raw model answer (default from the run's eval.postFilter)" },
    conditions: { type: 'string', placeholder: 'a,b', description: 'Only these conditions (predictions-<split>-<condition>.jsonl), default all' },
    ...HOME,
  },
  async run({ flags, positionals, stdout }) {
    const answer = flags.answer;
    if (answer !== undefined && answer !== 'filtered' && answer !== 'raw') throw new CliniloraError('E_ARG', `bad --answer '${answer}'`, { field: '--answer', expected: 'filtered | raw', found: answer });
    const seed = int(flags.seed, '--seed', false);
    const r = exportReview(positionals[0]!, {
      reviewers: int(flags.reviewers, '--reviewers', true)!,
      perReviewer: int(flags['per-reviewer'], '--per-reviewer', true)!,
      ...(seed !== undefined ? { seed } : {}),
      ...(flags.out !== undefined ? { out: flags.out } : {}),
      ...(flags.key !== undefined ? { key: flags.key } : {}),
      ...(answer !== undefined ? { answer: answer as AnswerSource } : {}),
      ...(flags.conditions !== undefined ? { conditions: flags.conditions.split(',').map((c) => c.trim()).filter((c) => c !== '') } : {}),
      ...(flags.home !== undefined ? { root: flags.home } : {}),
    });
    stdout.write(`review ${r.review} of run ${r.run}: ${r.items} of ${r.available} items (${r.answer} answers), ${r.files.length} packets, ${r.coverage[0] === r.coverage[1] ? r.coverage[0] : `${r.coverage[0]}-${r.coverage[1]}`} rating(s) per item\n`);
    for (const f of r.files) stdout.write(`packet ${f.packet}: ${f.csv} (+ .html), ${f.items} items\n`);
    stdout.write(`key (private: do not send): ${r.keyFile}\n`);
    for (const n of r.notes) stdout.write(`note: ${n}\n`);
    stdout.write(`send the packets folder ${r.packetsDir}; import the filled CSVs with 'clinilora review import <files...>'\n`);
    return 0;
  },
});

const importCmd = defineCommand({
  name: 'review import',
  description: 'Read filled review CSVs, aggregate (violations, mean/median, disclaimer rate, agreement, verdict) and record them as an eval run linked to the reviewed run',
  positionals: [{ name: 'files', description: 'Filled packet CSVs', required: true, rest: true }],
  flags: {
    run: { type: 'string', placeholder: 'id', description: 'The reviewed run (checked against the key)' },
    key: { type: 'string', placeholder: 'file', description: 'Key file (default found from the review id in the packets)' },
    'dry-run': { type: 'boolean', description: 'Print the aggregate; record nothing' },
    json: { type: 'boolean', description: 'Print the aggregate and metrics as JSON' },
    ...HOME,
  },
  async run({ flags, positionals, stdout }) {
    const r = await importReview(positionals, {
      ...(flags.key !== undefined ? { key: flags.key } : {}),
      ...(flags.run !== undefined ? { run: flags.run } : {}),
      ...(flags.home !== undefined ? { root: flags.home } : {}),
      ...(flags['dry-run'] === true ? { dryRun: true } : {}),
    });
    if (flags.json === true) {
      const finite = (_k: string, v: unknown): unknown => (typeof v === 'number' && !Number.isFinite(v) ? null : v);
      stdout.write(`${JSON.stringify({ run: r.runId, aggregate: r.aggregate, metrics: r.metrics }, finite, 2)}\n`);
      return 0;
    }
    stdout.write(formatReviewTable(r.aggregate));
    stdout.write(r.runId !== null ? `recorded as run ${r.runId} (eval, parent ${r.aggregate.run} role 'reviewed')\n` : 'dry run: nothing recorded\n');
    return 0;
  },
});

const SUBCOMMANDS: Record<string, CommandDef> = { export: exportCmd, import: importCmd } as unknown as Record<string, CommandDef>;

export const REVIEW_USAGE = `Usage: clinilora review <subcommand> [flags]

Subcommands:
${Object.entries(SUBCOMMANDS).map(([n, c]) => `  ${n.padEnd(8)} ${c.description}`).join('\n')}

Protocol: docs/REVIEW.md. See 'clinilora review <subcommand> --help'.
`;

export async function reviewCommand(argv: string[], io: Io): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help') {
    (sub === undefined ? io.stderr : io.stdout).write(REVIEW_USAGE);
    return sub === undefined ? 2 : 0;
  }
  const cmd = SUBCOMMANDS[sub];
  if (cmd === undefined) {
    throw new CliniloraError('E_ARG', `unknown subcommand 'review ${sub}'`, { expected: Object.keys(SUBCOMMANDS).join(' | '), found: sub, hint: "see 'clinilora review --help'" });
  }
  const { flags, positionals } = parseCommandArgs(cmd, rest);
  if (flags.help === true) {
    io.stdout.write(renderCommandHelp(cmd));
    return 0;
  }
  return (await cmd.run({ flags, positionals, stdout: io.stdout, stderr: io.stderr })) ?? 0;
}
