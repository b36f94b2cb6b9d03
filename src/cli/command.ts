/**
 * A command is plain data plus `run` (citty's `defineCommand` habit); flags are parsed by Node's own
 * `util.parseArgs` in strict mode, so an unknown or malformed flag is an error naming it.
 */
import { parseArgs } from 'node:util';
import { CliniloraError } from '../errors.ts';

export interface FlagDef {
  type: 'boolean' | 'string';
  description: string;
  short?: string;
  /** Shown in help as `--flag <placeholder>` (string flags). */
  placeholder?: string;
  multiple?: boolean;
}
export type FlagDefs = Record<string, FlagDef>;

type FlagValue<F extends FlagDef> = F['type'] extends 'boolean' ? boolean : F['multiple'] extends true ? string[] : string;
/** Parsed flags: absent flags are undefined. */
export type FlagValues<F extends FlagDefs> = { [K in keyof F]?: FlagValue<F[K]> };

export interface PositionalDef {
  name: string;
  description: string;
  required?: boolean;
  /** Takes all remaining arguments. */
  rest?: boolean;
}

export interface CommandContext<F extends FlagDefs> {
  flags: FlagValues<F>;
  positionals: string[];
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

export interface CommandDef<F extends FlagDefs = FlagDefs> {
  name: string;
  description: string;
  flags: F;
  positionals?: PositionalDef[];
  /** Exit code; undefined means 0. */
  run(ctx: CommandContext<F>): Promise<number | void>;
}

/**
 * A command that parses its own arguments (e.g. one with sub-subcommands): it gets argv after its
 * name, `--help` included, and returns the exit code; user errors are thrown as CliniloraError.
 */
export interface RawCommandDef {
  name: string;
  description: string;
  raw: true;
  run(argv: string[], io: { stdout: NodeJS.WritableStream; stderr: NodeJS.WritableStream }): Promise<number>;
}

export type AnyCommandDef = CommandDef | RawCommandDef;

/** Identity at run time; infers the flag types from the `flags` object literal. */
export function defineCommand<const F extends FlagDefs>(def: CommandDef<F>): CommandDef<F> {
  return def;
}

/** The flags every command accepts. */
export const COMMON_FLAGS = {
  help: { type: 'boolean', short: 'h', description: 'Show this help' },
} as const satisfies FlagDefs;

export interface Parsed<F extends FlagDefs> {
  flags: FlagValues<F> & { help?: boolean };
  positionals: string[];
}

export function parseCommandArgs<F extends FlagDefs>(cmd: CommandDef<F>, argv: string[]): Parsed<F> {
  const all: FlagDefs = { ...COMMON_FLAGS, ...cmd.flags };
  const options: Record<string, { type: 'boolean' | 'string'; short?: string; multiple?: boolean }> = {};
  for (const [name, f] of Object.entries(all)) {
    options[name] = { type: f.type, ...(f.short !== undefined ? { short: f.short } : {}), ...(f.multiple ? { multiple: true } : {}) };
  }
  let parsed: { values: Record<string, unknown>; positionals: string[] };
  try {
    parsed = parseArgs({ args: argv, options, strict: true, allowPositionals: true });
  } catch (e) {
    // ERR_PARSE_ARGS_UNKNOWN_OPTION / _INVALID_OPTION_VALUE / _UNEXPECTED_POSITIONAL: a user error.
    const msg = (e as Error).message.split('\n')[0]!.replace(/\. To specify a positional argument.*$/, '');
    throw new CliniloraError('E_ARG', msg, { hint: `see 'clinilora ${cmd.name} --help'` });
  }
  const pos = cmd.positionals ?? [];
  if (parsed.values.help !== true) {
    const required = pos.filter((p) => p.required === true);
    if (parsed.positionals.length < required.length) {
      const missing = required[parsed.positionals.length]!;
      throw new CliniloraError('E_ARG', `missing argument <${missing.name}>`, { hint: `see 'clinilora ${cmd.name} --help'` });
    }
    if (!pos.some((p) => p.rest === true) && parsed.positionals.length > pos.length) {
      throw new CliniloraError('E_ARG', `unexpected argument '${parsed.positionals[pos.length]}'`, {
        hint: `see 'clinilora ${cmd.name} --help'`,
      });
    }
  }
  return { flags: parsed.values as Parsed<F>['flags'], positionals: parsed.positionals };
}

export function renderCommandHelp(cmd: CommandDef): string {
  const pos = (cmd.positionals ?? []).map((p) => (p.required === true ? `<${p.name}>` : `[${p.name}]`) + (p.rest === true ? '...' : ''));
  const lines = [`${cmd.description}`, '', `Usage: clinilora ${cmd.name} [flags]${pos.length > 0 ? ' ' + pos.join(' ') : ''}`];
  if ((cmd.positionals ?? []).length > 0) {
    lines.push('', 'Arguments:');
    for (const p of cmd.positionals ?? []) lines.push(`  ${p.name.padEnd(22)} ${p.description}`);
  }
  lines.push('', 'Flags:');
  const all: FlagDefs = { ...cmd.flags, ...COMMON_FLAGS };
  for (const [name, f] of Object.entries(all)) {
    const short = f.short !== undefined ? `-${f.short}, ` : '    ';
    const long = `--${name}${f.type === 'string' ? ` <${f.placeholder ?? 'value'}>` : ''}`;
    lines.push(`  ${short}${long.padEnd(22)} ${f.description}`);
  }
  return lines.join('\n') + '\n';
}
