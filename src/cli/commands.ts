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
];
