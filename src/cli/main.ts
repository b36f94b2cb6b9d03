/**
 * The `clinilora` command, thin over the library. `main(argv)` returns the exit code: 0 ok, 2 a user
 * error (CliniloraError, unknown command, bad flag: one line and a usage hint), 1 a bug (stack trace).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { CliniloraError } from '../errors.ts';
import { parseCommandArgs, renderCommandHelp } from './command.ts';
import { COMMANDS, type CommandEntry } from './commands.ts';
import { editDistance } from '../util/text.ts';

export interface CliIo {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

function version(): string {
  return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
}

export function renderHelp(table: readonly CommandEntry[] = COMMANDS): string {
  const width = Math.max(...table.map((c) => c.name.length)) + 2;
  return [
    'clinilora: LoRA fine-tuning of quantized Phi-3 models on TensorFlow.js',
    '',
    'Usage: clinilora <command> [flags]',
    '',
    'Commands:',
    ...table.map((c) => `  ${c.name.padEnd(width)} ${c.summary}`),
    '',
    'Flags:',
    '  -h, --help       Show help (also: clinilora <command> --help)',
    '  -v, --version    Show the version',
    '',
    'Environment: CLINILORA_BACKEND=tensorflow|wasm|cpu, CLINILORA_THREADS=n (wasm threads)',
    '',
  ].join('\n');
}

function findCommand(table: readonly CommandEntry[], name: string): CommandEntry {
  const entry = table.find((c) => c.name === name);
  if (entry !== undefined) return entry;
  const near = table.filter((c) => editDistance(c.name, name) <= 2).map((c) => c.name);
  throw new CliniloraError('E_ARG', `unknown command '${name}'`, {
    hint: `${near.length > 0 ? `did you mean '${near[0]}'? ` : ''}commands: ${table.map((c) => c.name).join(', ')}; see 'clinilora --help'`,
  });
}

const STDIO: CliIo = { stdout: process.stdout, stderr: process.stderr };

export function main(argv: string[], io: CliIo = STDIO): Promise<number> {
  return runCli(argv, COMMANDS, io);
}

/** `main` over any command table (tests pass their own). */
export async function runCli(argv: string[], table: readonly CommandEntry[], io: CliIo = STDIO): Promise<number> {
  try {
    const [first, ...rest] = argv;
    if (first === undefined) {
      io.stderr.write(renderHelp(table));
      return 2;
    }
    if (first === '--help' || first === '-h') {
      io.stdout.write(renderHelp(table));
      return 0;
    }
    if (first === '--version' || first === '-v') {
      io.stdout.write(`${version()}\n`);
      return 0;
    }
    if (first === 'help') {
      if (rest[0] === undefined) {
        io.stdout.write(renderHelp(table));
        return 0;
      }
      const target = await findCommand(table, rest[0]).load();
      if ('raw' in target) return await target.run(['--help'], io);
      io.stdout.write(renderCommandHelp(target));
      return 0;
    }
    if (first.startsWith('-')) {
      throw new CliniloraError('E_ARG', `unknown flag '${first}' before the command`, { hint: "see 'clinilora --help'" });
    }
    const cmd = await findCommand(table, first).load();
    if ('raw' in cmd) return await cmd.run(rest, io);
    const { flags, positionals } = parseCommandArgs(cmd, rest);
    if (flags.help === true) {
      io.stdout.write(renderCommandHelp(cmd));
      return 0;
    }
    return (await cmd.run({ flags, positionals, stdout: io.stdout, stderr: io.stderr })) ?? 0;
  } catch (e) {
    if (e instanceof CliniloraError) {
      io.stderr.write(`clinilora: ${e.message}\n`);
      if (e.details.hint === undefined) io.stderr.write("Run 'clinilora --help' for usage.\n");
      return 2;
    }
    io.stderr.write(`clinilora: internal error (please report it):\n${(e as Error)?.stack ?? String(e)}\n`);
    return 1;
  }
}

// `node --import tsx src/cli/main.ts doctor` (the npm `doctor` script) runs this file directly.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  process.exitCode = await main(process.argv.slice(2));
}
