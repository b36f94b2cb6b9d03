/**
 * `clinilora runs ls|show|diff|rm|tag|export`: thin over src/tracker/compare.ts and export.ts.
 * Every subcommand takes `--home DIR` (default CLINILORA_HOME or the package root).
 */
import { createInterface } from 'node:readline/promises';
import { CliniloraError } from '../errors.ts';
import { diffRuns, findRun, findRuns, flattenObject, formatDiff, formatNumber, resolveRunId, showValue, summarizeRun, type RunFilter } from '../tracker/compare.ts';
import { removeRuns, tagRun } from '../tracker/manage.ts';
import { exportRuns } from '../tracker/export.ts';
import { effectiveStatus, RUN_STATUSES, staleReason, stepSeries, type RunRecord, type RunStatus } from '../tracker/schema.ts';
import { formatVerdict } from '../tracker/verdict.ts';
import { runsDir } from '../tracker/store.ts';
import { writeFileAtomic } from '../util/atomic.ts';
import { defineCommand, parseCommandArgs, renderCommandHelp, type CommandDef, type FlagDefs } from './command.ts';

type Io = { stdout: NodeJS.WritableStream; stderr: NodeJS.WritableStream };

const HOME = { home: { type: 'string', placeholder: 'dir', description: 'Where experiments/runs lives (default CLINILORA_HOME or the package root)' } } as const satisfies FlagDefs;
const FILTERS = {
  task: { type: 'string', placeholder: 'task', description: 'Only runs of this task' },
  status: { type: 'string', placeholder: 'status', description: `Only runs with this status (${RUN_STATUSES.join(', ')})` },
  tag: { type: 'string', placeholder: 'tag', description: 'Only runs with this tag' },
  kind: { type: 'string', placeholder: 'kind', description: 'Only runs of this kind (train, eval, reproduce, notebook)' },
} as const satisfies FlagDefs;

const root = (home: string | undefined): { root?: string } => (home !== undefined ? { root: home } : {});

function filterOf(flags: { task?: string; status?: string; tag?: string; kind?: string }): RunFilter {
  if (flags.status !== undefined && !(RUN_STATUSES as readonly string[]).includes(flags.status)) {
    throw new CliniloraError('E_ARG', `unknown status '${flags.status}'`, { field: '--status', expected: RUN_STATUSES.join(' | '), found: flags.status });
  }
  return {
    ...(flags.task !== undefined ? { task: flags.task } : {}),
    ...(flags.status !== undefined ? { status: flags.status as RunStatus } : {}),
    ...(flags.tag !== undefined ? { tag: flags.tag } : {}),
    ...(flags.kind !== undefined ? { kind: flags.kind } : {}),
  };
}

/** `2025-01-01T12:00:00.123Z` → `2025-01-01 12:00:00`. */
const when = (iso: string | null): string => (iso === null ? '—' : iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z').replace(/Z$/, ''));

function columns(rows: string[][]): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows.map((r) => r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]!))).join('  ').trimEnd()).join('\n') + '\n';
}

const ls = defineCommand({
  name: 'runs ls',
  description: 'List runs, newest first (a running run with a stale heartbeat shows as crashed)',
  flags: { ...FILTERS, json: { type: 'boolean', description: 'JSON: {runs: [summaries], broken: [{file, error}]}' }, ...HOME },
  async run({ flags, stdout, stderr }) {
    const now = Date.now();
    const { runs, broken } = findRuns(filterOf(flags), { ...root(flags.home), now });
    const summaries = runs.map((r) => summarizeRun(r, now));
    if (flags.json === true) {
      stdout.write(`${JSON.stringify({ runs: summaries, broken }, null, 2)}\n`);
      return 0;
    }
    for (const b of broken) stderr.write(`unreadable record ${b.file}: ${b.error}\n`);
    if (summaries.length === 0) {
      stdout.write(`no runs${Object.keys(filterOf(flags)).length > 0 ? ' match' : ''} in ${runsDir(flags.home)}\n`);
      return 0;
    }
    const rows = [['id', 'name', 'task', 'kind', 'status', 'started (UTC)', 'steps', 'metric']];
    for (const s of summaries) {
      const metric = s.metric === null ? '—' : `${s.metric.name} ${formatNumber(s.metric.value)}`;
      rows.push([s.id, s.name, s.task, s.kind, s.status, when(s.started), String(s.steps), metric]);
    }
    stdout.write(columns(rows));
    return 0;
  },
});

function showText(r: RunRecord): string {
  const status = effectiveStatus(r);
  const out: string[] = [];
  const kv = (k: string, v: string): void => void out.push(`${k.padEnd(10)} ${v}`);
  kv('id', r.id);
  kv('name', r.name);
  kv('task', `${r.task} (${r.kind})`);
  kv('status', status === r.status ? status : `${status} (recorded '${r.status}': ${staleReason(r) ?? 'its process is gone'})`);
  kv('started', when(r.times.started));
  kv('ended', when(r.times.ended));
  if (r.times.resumed.length > 0) kv('resumed', r.times.resumed.map(when).join(', '));
  kv('seed', r.seeds !== undefined ? `${r.seed} (${Object.entries(r.seeds).map(([k, v]) => `${k} ${v}`).join(', ')})` : String(r.seed));
  kv('config', `hash ${r.configHash.slice(0, 12)}`);
  if (r.tags.length > 0) kv('tags', r.tags.join(', '));
  for (const p of r.parents) kv('parent', `${p.role} ${p.id}`);
  kv('git', r.git.isRepo ? `${r.git.commit ?? '(no commit)'} on ${r.git.branch ?? '?'}${r.git.dirty === true ? `, dirty (${r.git.untracked.length} untracked)` : ''}` : `not a repository${r.git.note !== undefined ? ` (${r.git.note})` : ''}`);
  if (r.git.patchFile !== undefined) kv('patch', `${r.git.patchFile} next to run.json (${r.git.patchBytes ?? '?'} bytes, sha256 ${r.git.patchSha256?.slice(0, 12) ?? '?'})`);
  if (r.baseModel != null) kv('base', `${r.baseModel.nameOrPath} (${r.baseModel.quantization}${r.baseModel.sha256 !== null ? `, sha256 ${r.baseModel.sha256.slice(0, 12)}` : ''})`);
  const b = r.env.backend;
  kv('env', `node ${r.env.node}, ${r.env.platform}-${r.env.arch}, ${r.env.cpus}× ${r.env.cpu}${b !== null ? `, ${b.name} ${b.threads} thread(s)${b.simd ? ' simd' : ''}` : ''}`);
  if (r.data !== null) {
    kv('data', `${r.data.task} ${r.data.generator.name}@${r.data.generator.version}, manifest ${r.data.manifestSha256.slice(0, 12)}, ${Object.entries(r.data.counts).map(([k, v]) => `${k} ${v}`).join(', ')}`);
    for (const f of r.data.sources ?? []) kv('source', `${f.path} (${f.bytes} bytes, sha256 ${f.sha256.slice(0, 12)})`);
  }
  if (r.env.lockfileSha256 != null) kv('lockfile', `package-lock.json sha256 ${r.env.lockfileSha256.slice(0, 12)}, ${Object.keys(r.env.packages ?? {}).length} packages recorded`);
  const steps = stepSeries(r);
  if (steps.length > 0) {
    const first = steps[0]!;
    const last = steps[steps.length - 1]!;
    kv('steps', `${steps.length} (step ${first.step}..${last.step}), loss ${formatNumber(first.loss)} → ${formatNumber(last.loss)}, lr ${formatNumber(last.lr)}`);
  }
  if (r.evals.length > 0) {
    out.push('', 'evaluations:');
    for (const e of r.evals) out.push(`  step ${e.step ?? '—'} ${e.split}: ${Object.entries(e.metrics).map(([k, v]) => `${k} ${formatNumber(v)}`).join(', ')}`);
  }
  if (r.metrics !== null) {
    out.push('', 'final metrics:');
    const w = Math.max(...Object.keys(r.metrics).map((k) => k.length));
    for (const [k, v] of Object.entries(r.metrics)) out.push(`  ${k.padEnd(w)}  ${formatNumber(v)}`);
  }
  if (r.artifacts.length > 0) {
    out.push('', 'artifacts:');
    for (const a of r.artifacts) out.push(`  ${a.path} (${a.bytes} bytes, ${a.kind ?? 'file'}, sha256 ${a.sha256.slice(0, 12)})`);
  }
  if (r.reproduction != null) out.push('', 'reproduction:', ...formatVerdict(r.reproduction).trimEnd().split('\n').map((l) => `  ${l}`));
  out.push('', 'config:');
  for (const [k, v] of Object.entries(flattenObject(r.config))) out.push(`  ${k} = ${showValue(v, 100)}`);
  if (r.error !== null) out.push('', `error: ${r.error.message}`, ...(r.error.stack !== null ? [r.error.stack] : []));
  return `${out.join('\n')}\n`;
}

const show = defineCommand({
  name: 'runs show',
  description: 'Show one run record (id, unique id prefix, or path to run.json)',
  positionals: [{ name: 'id', description: 'Run id', required: true }],
  flags: { json: { type: 'boolean', description: 'Print the record as JSON' }, ...HOME },
  async run({ flags, positionals, stdout }) {
    const r = findRun(positionals[0]!, root(flags.home));
    stdout.write(flags.json === true ? `${JSON.stringify(r, null, 2)}\n` : showText(r));
    return 0;
  },
});

const diff = defineCommand({
  name: 'runs diff',
  description: 'Show only what differs between two runs: config keys, data, git, environment, metrics (delta = b − a)',
  positionals: [
    { name: 'a', description: 'First run id', required: true },
    { name: 'b', description: 'Second run id', required: true },
  ],
  flags: { json: { type: 'boolean', description: 'Print the diff as JSON' }, ...HOME },
  async run({ flags, positionals, stdout }) {
    const d = diffRuns(positionals[0]!, positionals[1]!, root(flags.home));
    stdout.write(flags.json === true ? `${JSON.stringify(d, null, 2)}\n` : formatDiff(d));
    return 0;
  },
});

async function confirm(question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^y(es)?$/i.test((await rl.question(question)).trim());
  } finally {
    rl.close();
  }
}

const rm = defineCommand({
  name: 'runs rm',
  description: 'Delete runs (their whole directory); a running run is refused unless --force',
  positionals: [{ name: 'id', description: 'Run ids', required: true, rest: true }],
  flags: {
    yes: { type: 'boolean', short: 'y', description: 'Do not ask for confirmation' },
    force: { type: 'boolean', description: 'Delete even a run that is still running' },
    ...HOME,
  },
  async run({ flags, positionals, stdout, stderr }) {
    const o = root(flags.home);
    // Every id resolves before anything is asked or deleted (an unreadable record only with --force).
    const records = positionals.map((p): Pick<RunRecord, 'id' | 'name' | 'status' | 'times'> => {
      try {
        return findRun(p, o);
      } catch (e) {
        if (flags.force === true && e instanceof CliniloraError && e.code === 'E_FORMAT') return { id: resolveRunId(p, o), name: '(unreadable)', status: 'failed', times: { started: '', heartbeat: '', ended: null, resumed: [] } };
        throw e;
      }
    });
    if (flags.yes !== true) {
      const list = records.map((r) => `${r.id} (${r.name}, ${effectiveStatus(r)})`).join(', ');
      if (!process.stdin.isTTY) {
        throw new CliniloraError('E_ARG', `would delete ${records.length} run(s): ${list}`, { hint: 'pass --yes to delete them' });
      }
      if (!(await confirm(`delete ${list}? [y/N] `))) {
        stderr.write('nothing deleted\n');
        return 1;
      }
    }
    for (const id of removeRuns(records.map((r) => r.id), { ...o, ...(flags.force === true ? { force: true } : {}) })) stdout.write(`removed ${id}\n`);
    return 0;
  },
});

const tag = defineCommand({
  name: 'runs tag',
  description: 'Add tags to a run (or remove them with --remove)',
  positionals: [
    { name: 'id', description: 'Run id', required: true },
    { name: 'tag', description: 'Tags', required: true, rest: true },
  ],
  flags: { remove: { type: 'boolean', description: 'Remove the tags instead' }, ...HOME },
  async run({ flags, positionals, stdout }) {
    const [ref, ...tags] = positionals as [string, ...string[]];
    const now = tagRun(ref, tags, { ...root(flags.home), ...(flags.remove === true ? { remove: true } : {}) });
    stdout.write(`${findRun(ref, root(flags.home)).id} tags: ${now.length > 0 ? now.join(', ') : '(none)'}\n`);
    return 0;
  },
});

const exportCmd = defineCommand({
  name: 'runs export',
  description: 'One row per run (flattened config + final metrics) as CSV or JSON',
  flags: {
    format: { type: 'string', placeholder: 'csv|json', description: 'Output format (default csv)' },
    out: { type: 'string', placeholder: 'file', description: 'Write to this file (atomically) instead of stdout' },
    ...FILTERS,
    ...HOME,
  },
  async run({ flags, stdout, stderr }) {
    const format = flags.format ?? 'csv';
    if (format !== 'csv' && format !== 'json') throw new CliniloraError('E_ARG', `unknown format '${format}'`, { field: '--format', expected: 'csv | json', found: format });
    const text = exportRuns(format, { ...root(flags.home), filter: filterOf(flags) });
    if (flags.out === undefined) stdout.write(text);
    else {
      writeFileAtomic(flags.out, text);
      stderr.write(`wrote ${flags.out}\n`);
    }
    return 0;
  },
});

const SUBCOMMANDS: Record<string, CommandDef> = { ls, show, diff, rm, tag, export: exportCmd } as unknown as Record<string, CommandDef>;

export const RUNS_USAGE = `Usage: clinilora runs <subcommand> [flags]

Subcommands:
${Object.entries(SUBCOMMANDS).map(([n, c]) => `  ${n.padEnd(8)} ${c.description}`).join('\n')}

See 'clinilora runs <subcommand> --help'.
`;

export async function runsCommand(argv: string[], io: Io): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help') {
    (sub === undefined ? io.stderr : io.stdout).write(RUNS_USAGE);
    return sub === undefined ? 2 : 0;
  }
  const cmd = SUBCOMMANDS[sub];
  if (cmd === undefined) {
    throw new CliniloraError('E_ARG', `unknown subcommand 'runs ${sub}'`, { expected: Object.keys(SUBCOMMANDS).join(' | '), found: sub, hint: "see 'clinilora runs --help'" });
  }
  const { flags, positionals } = parseCommandArgs(cmd, rest);
  if (flags.help === true) {
    io.stdout.write(renderCommandHelp(cmd));
    return 0;
  }
  return (await cmd.run({ flags, positionals, stdout: io.stdout, stderr: io.stderr })) ?? 0;
}
