/**
 * The one table of `clinilora` subcommands. A command's module is loaded only when it runs, so
 * `clinilora --help` stays fast. To add one: write `src/cli/<name>.ts` exporting a `defineCommand(...)`
 * and add a row here.
 */
import type { AnyCommandDef } from './command.ts';

export interface CommandEntry {
  name: string;
  /** One line for `clinilora --help`. */
  summary: string;
  load(): Promise<AnyCommandDef>;
}

export const COMMANDS: readonly CommandEntry[] = [
  {
    name: 'doctor',
    summary: 'Show the backend and why, the machine, versions and optional parts; measure matmul speed',
    load: async () => (await import('./doctor.ts')).doctorCommand,
  },
  {
    name: 'data',
    summary: 'Build a task dataset (auditor, heart-risk, alpacare) or show a built one',
    load: async () => {
      const { dataCommand } = await import('./data.ts');
      return {
        name: 'data',
        description: 'Build a task dataset or show a built one',
        raw: true,
        run: (argv, io) => dataCommand(argv, { out: (text) => void io.stdout.write(text) }),
      };
    },
  },
  {
    name: 'train',
    summary: 'Train a LoRA adapter from a config, evaluate it against the base alone, record the run',
    load: async () => (await import('./train.ts')).trainCommand,
  },
  {
    name: 'targets',
    summary: "Train and evaluate each task's default nano config and check the results against the targets",
    load: async () => (await import('./targets.ts')).targetsCommand,
  },
  {
    name: 'eval',
    summary: 'Evaluate an adapter (run id or directory) on a split of its task; recorded as an eval run',
    load: async () => (await import('./eval.ts')).evalCommand,
  },
  {
    name: 'generate',
    summary: 'Answer one report or question (from --file or stdin) with a base and optional adapter',
    load: async () => (await import('./generate.ts')).generateCommand,
  },
  {
    name: 'chat',
    summary: "Interactive medical assistant on stdin/stdout with the safety layer ('quit' leaves)",
    load: async () => (await import('./chat.ts')).chatCommand,
  },
  {
    name: 'merge',
    summary: 'Merge an adapter into its base and write a Hugging Face checkpoint directory',
    load: async () => (await import('./merge.ts')).mergeCommand,
  },
  {
    name: 'export',
    summary: 'Export a model (base + adapter merged, or a checkpoint directory) as GGUF for llama.cpp',
    load: async () => (await import('./export.ts')).exportCommand,
  },
  {
    name: 'runs',
    summary: 'List, show, diff, tag, delete and export run records (ls, show, diff, rm, tag, export)',
    load: async () => {
      const { runsCommand } = await import('./runs.ts');
      return { name: 'runs', description: 'List, show, diff, tag, delete and export run records', raw: true, run: runsCommand };
    },
  },
  {
    name: 'review',
    summary: 'Human review (AlpaCare protocol): export blinded packets, import Likert scores, record agreement and verdict',
    load: async () => {
      const { reviewCommand } = await import('./review.ts');
      return { name: 'review', description: 'Human review: export blinded packets, import filled scores', raw: true, run: reviewCommand };
    },
  },
  {
    name: 'reproduce',
    summary: 'Re-run a recorded training run (same commit, config, seed, sample IDs) and say whether the numbers match',
    load: async () => (await import('./reproduce.ts')).reproduceCommand,
  },
  {
    name: 'notebooks',
    summary: 'Run notebooks headless (-p key=value parameters), each recorded as a notebook run; list them (run, ls)',
    load: async () => {
      const { notebooksCommand } = await import('./notebooks.ts');
      return { name: 'notebooks', description: 'Run and list notebooks', raw: true, run: notebooksCommand };
    },
  },
  {
    name: 'report',
    summary: 'Write one self-contained HTML report (plots inline) for one or more runs; --png via headless Chromium',
    load: async () => (await import('./report.ts')).reportCommand,
  },
];
