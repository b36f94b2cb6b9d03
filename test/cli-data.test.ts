import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { dataCommand } from '../src/cli/data.ts';
import { CliniloraError } from '../src/errors.ts';
import { TASKS } from '../src/data/index.ts';
import type { SplitManifest } from '../src/data/manifest.ts';
import type { Sample } from '../src/data/sample.ts';

const tmp = (): string => mkdtempSync(join(tmpdir(), 'clinilora-cli-data-'));
process.env.CLINILORA_HOME = tmp(); // a missing --out never writes into the repo
const repo = fileURLToPath(new URL('..', import.meta.url));
const script = join(repo, 'test', 'fixtures', 'data-cli.ts');

/** `clinilora data ...` as a real process (the fixture stands in until main.ts dispatches `data`). */
function cli(args: string[], env: Record<string, string> = {}): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', script, ...args], {
    cwd: repo,
    env: { ...process.env, ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

async function run(args: string[]): Promise<{ code: number; out: string }> {
  let out = '';
  const code = await dataCommand(args, { out: (t) => void (out += t) });
  return { code, out };
}

const manifestAt = (dir: string): SplitManifest => JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as SplitManifest;
const firstLine = (file: string): Sample => JSON.parse(readFileSync(file, 'utf8').split('\n')[0]!) as Sample;

function argError(...mentions: string[]) {
  return (e: unknown): boolean => {
    assert.ok(e instanceof CliniloraError, String(e));
    assert.equal(e.code, 'E_ARG');
    for (const m of mentions) assert.ok(e.message.includes(m), `message should name ${m}: ${e.message}`);
    return true;
  };
}

test('data build then show, called directly', async () => {
  const dir = join(tmp(), 'auditor');
  const b = await run(['build', 'auditor', '--n', '300', '--seed', '5', '--out', dir]);
  assert.equal(b.code, 0);
  const m = manifestAt(dir);
  assert.equal(m.seed, 5);
  assert.equal(m.counts.train + m.counts.validation + m.counts.test, 300);
  assert.ok(b.out.includes(m.sha256), b.out);
  assert.ok(b.out.includes(dir));
  assert.ok(b.out.includes(`train ${m.counts.train}, validation ${m.counts.validation}, test ${m.counts.test}`), b.out);
  assert.match(b.out, /dropped: duplicate_report \d+/);

  const s = await run(['show', 'auditor', '--dir', dir, '--n', '2', '--split', 'validation']);
  assert.equal(s.code, 0);
  const v0 = firstLine(join(dir, 'validation.jsonl'));
  assert.ok(s.out.includes(v0.id) && s.out.includes(v0.answer), 'shows the first validation sample');
  assert.equal(s.out.match(/=== example /g)?.length, 2);
  // label counts: the row of the first sample's category sums to the samples of that category
  const cat = String(v0.meta.category);
  const samples = ['train', 'validation', 'test'].flatMap((n) =>
    readFileSync(join(dir, `${n}.jsonl`), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Sample),
  );
  const total = samples.filter((x) => x.meta.category === cat).length;
  const row = s.out.split('\n').find((l) => l.startsWith(cat));
  assert.ok(row, s.out);
  assert.equal(Number(row.trim().split(/\s+/).pop()), total);
  assert.match(s.out, /total_tokens\s+300\s/);

  const none = await run(['show', 'auditor', '--dir', dir, '--n', '0']);
  assert.equal(none.out.includes('=== example'), false);
});

test('data build and show through a real process; default dir under CLINILORA_HOME', () => {
  const home = tmp();
  const b = cli(['build', 'heart-risk', '--incomplete', '20', '--include-time'], { CLINILORA_HOME: home });
  assert.equal(b.status, 0, b.stderr);
  const dir = join(home, 'data', 'generated', 'heart-risk');
  const m = manifestAt(dir);
  assert.equal(m.options.include_time, true);
  assert.equal(m.options.incomplete, 20);
  assert.ok(b.stdout.includes(m.sha256), b.stdout);

  const s = cli(['show', 'heart-risk', '--n', '1', '--split', 'test'], { CLINILORA_HOME: home });
  assert.equal(s.status, 0, s.stderr);
  const t0 = firstLine(join(dir, 'test.jsonl'));
  assert.ok(s.stdout.includes(t0.answer));
  assert.ok(s.stdout.includes(`test ${m.counts.test}`));
  assert.match(s.stdout, new RegExp(`^${String(t0.meta.risk_level)}\\s+\\d+`, 'm'), 'label counts list the risk level');

  // the same build twice gives the same bytes
  const out2 = join(tmp(), 'again');
  assert.equal(cli(['build', 'heart-risk', '--incomplete', '20', '--include-time', '--out', out2]).status, 0);
  for (const f of ['manifest.json', 'train.jsonl', 'validation.jsonl', 'test.jsonl']) {
    assert.ok(readFileSync(join(dir, f)).equals(readFileSync(join(out2, f))), f);
  }
});

test('CLI errors exit non-zero and name the flag (real process)', () => {
  const out = join(tmp(), 'x');
  const cases: Array<[string[], string[]]> = [
    [['build', 'auditor', '--n', 'abc', '--out', out], ['--n', 'abc']],
    [['build', 'auditor', '--bogus', '--out', out], ['--bogus', '--seed']],
    [['build', 'auditr', '--out', out], ['auditr', ...TASKS]],
    [['build', 'heart-risk', '--source', 'x.jsonl', '--out', out], ['--source', 'alpacare']],
    [['build', 'auditor', '--ratios', '0.8,0.2', '--out', out], ['--ratios']],
    [['show', 'alpacare', '--dir', out], ['clinilora data build alpacare']],
    [['frobnicate'], ['build | show']],
  ];
  for (const [args, mentions] of cases) {
    const r = cli(args);
    assert.notEqual(r.status, 0, args.join(' '));
    for (const m of mentions) assert.ok(r.stderr.includes(m), `${args.join(' ')}: stderr should name ${m}: ${r.stderr}`);
  }
  assert.equal(existsSync(out), false, 'nothing written on a bad command');
});

test('argument errors are CliniloraError E_ARG (direct)', async () => {
  await assert.rejects(run(['build']), argError(...TASKS));
  await assert.rejects(run(['build', 'auditor', 'heart-risk']), argError('<task>'));
  await assert.rejects(run(['build', 'auditor', '--incomplete', '3']), argError('--incomplete', 'heart-risk'));
  await assert.rejects(run(['build', 'alpacare', '--n', '10']), argError('--n', 'auditor'));
  await assert.rejects(run(['build', 'auditor', '--max-tokens', '0']), argError('--max-tokens'));
  await assert.rejects(run(['build', 'auditor', '--n']), argError('--n'));
  await assert.rejects(run(['show', 'auditor', '--split', 'dev']), argError('--split', 'validation'));
  await assert.rejects(run(['show', 'auditor', '--n', '-1']), argError('--n'));
  assert.equal((await run(['--help'])).code, 0);
  assert.match((await run(['build', '--help'])).out, /clinilora data build <task>/);
});
