/** The `clinilora` command: the real process for doctor/help/errors, `runCli` in-process for exit codes. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { CliniloraError } from '../src/errors.ts';
import { defineCommand } from '../src/cli/command.ts';
import { runCli } from '../src/cli/main.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

function cli(args: string[], env: Record<string, string> = {}): { status: number | null; stdout: string; stderr: string } {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('CLINILORA_')));
  const r = spawnSync(process.execPath, [path.join(root, 'bin', 'clinilora.js'), ...args], {
    cwd: os.tmpdir(), // the command must not depend on the working directory
    env: { ...clean, ...env },
    encoding: 'utf8',
    timeout: 120_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const pkgVersion = (dir: string): string => (JSON.parse(readFileSync(path.join(root, 'node_modules', dir, 'package.json'), 'utf8')) as { version: string }).version;

test('doctor --json: one JSON document with backend, machine, versions, optional parts and a matmul figure', () => {
  const r = cli(['doctor', '--json', '--size', '128']);
  assert.equal(r.status, 0, r.stderr);
  const d = JSON.parse(r.stdout) as {
    clinilora: { version: string };
    backend: { name: string; threads: number; simd: boolean; source: string; tried: Array<{ name: string; status: string; reason: string }> };
    cpu: { cores: number; avx2: boolean; fma: boolean; avx512f: boolean; mhz: number; peak: { gflops: number; formula: string } };
    memory: { totalBytes: number };
    node: { version: string };
    packages: Record<string, string | null>;
    optional: Record<string, { found: boolean; detail: string }>;
    matmul: { n: number; gflops: number; backend: string; threads: number };
  };
  assert.equal(d.clinilora.version, (JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string }).version);
  assert.ok(['tensorflow', 'wasm', 'cpu'].includes(d.backend.name));
  assert.equal(d.backend.source, 'auto');
  assert.deepEqual(d.backend.tried.map((t) => t.name), ['tensorflow', 'wasm', 'cpu']);
  assert.equal(d.backend.tried.filter((t) => t.status === 'chosen').length, 1);
  for (const t of d.backend.tried) assert.ok(t.reason.length > 0, `no reason for ${t.name}`);
  assert.equal(d.cpu.cores, os.availableParallelism());
  assert.equal(d.memory.totalBytes, os.totalmem());
  assert.equal(d.node.version, process.version);
  assert.equal(d.packages['@tensorflow/tfjs'], pkgVersion('@tensorflow/tfjs'));
  assert.equal(d.packages['@tensorflow/tfjs-backend-wasm'], pkgVersion('@tensorflow/tfjs-backend-wasm'));
  assert.equal(d.packages.typescript, pkgVersion('typescript'));
  if (existsSync('/proc/cpuinfo')) {
    const flags = (/^flags\s*:(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? '').split(/\s+/);
    assert.equal(d.cpu.avx2, flags.includes('avx2'));
    assert.equal(d.cpu.fma, flags.includes('fma'));
    assert.equal(d.cpu.avx512f, flags.includes('avx512f'));
    assert.ok(d.cpu.mhz > 0);
    assert.ok(d.cpu.peak.gflops > 0);
    assert.match(d.cpu.peak.formula, new RegExp(`^${os.availableParallelism()} cores × `));
  }
  const parts = ['@tensorflow/tfjs-node', '@tensorflow/tfjs-node-gpu', 'webgpu', 'chromium', 'jupyter', 'python3 torch', 'nvidia gpu'];
  assert.deepEqual(Object.keys(d.optional).sort(), [...parts].sort());
  assert.equal(d.optional.chromium!.found, existsSync('/usr/bin/chromium'));
  assert.equal(d.matmul.n, 128);
  assert.equal(d.matmul.backend, d.backend.name);
  assert.equal(d.matmul.threads, d.backend.threads);
  assert.ok(d.matmul.gflops > 0 && Number.isFinite(d.matmul.gflops));
});

test('doctor (text) on an explicit backend names it and the measured speed', () => {
  const r = cli(['doctor', '--backend', 'cpu', '--size', '64']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^Backend\s+cpu \(1 thread\), asked for$/m);
  assert.match(r.stdout, /^Matmul\s+64×64×64 fp32: [\d.]+ GFLOP\/s/m);
  assert.doesNotMatch(r.stdout + r.stderr, /To speed things up dramatically/); // the banner itself
});

test('--help lists the commands; doctor --help lists its flags', () => {
  const r = cli(['--help']);
  assert.equal(r.status, 0);
  assert.match(r.stdout, /^Usage: clinilora <command>/m);
  assert.match(r.stdout, /^ {2}doctor\s+\S/m);
  const d = cli(['doctor', '--help']);
  assert.equal(d.status, 0);
  assert.match(d.stdout, /--json/);
  assert.match(d.stdout, /--backend <tensorflow\|wasm\|cpu>/);
});

test('unknown command: exit 2, one line naming it, a hint, no stack', () => {
  const r = cli(['frobnicate']);
  assert.equal(r.status, 2);
  assert.equal(r.stdout, '');
  assert.match(r.stderr, /unknown command 'frobnicate'/);
  assert.match(r.stderr, /clinilora --help/);
  assert.doesNotMatch(r.stderr, /\n\s+at /);
  assert.match(cli(['doctr']).stderr, /did you mean 'doctor'/);
});

test('bad flag, bad backend value, no command: exit 2', () => {
  const flag = cli(['doctor', '--bogus']);
  assert.equal(flag.status, 2);
  assert.match(flag.stderr, /'--bogus'/);
  const env = cli(['doctor', '--json'], { CLINILORA_BACKEND: 'quantum' });
  assert.equal(env.status, 2);
  assert.match(env.stderr, /CLINILORA_BACKEND.*"quantum"/);
  assert.equal(env.stdout, '');
  const none = cli([]);
  assert.equal(none.status, 2);
  assert.match(none.stderr, /Usage: clinilora/);
});

test('runCli: CliniloraError → 2 with its message; any other throw → 1 with the stack', async () => {
  const table = [
    { name: 'user', summary: 'x', load: async () => defineCommand({ name: 'user', description: 'x', flags: {}, run: async () => { throw new CliniloraError('E_CONFIG', 'bad lr', { field: 'lr', expected: '> 0', found: '-1' }); } }) },
    { name: 'bug', summary: 'x', load: async () => defineCommand({ name: 'bug', description: 'x', flags: {}, run: async () => { throw new TypeError('oops'); } }) },
    { name: 'ok', summary: 'x', load: async () => defineCommand({ name: 'ok', description: 'x', flags: { n: { type: 'string', description: 'n' } }, positionals: [{ name: 'file', description: 'f', required: true }], run: async ({ flags, positionals, stdout }) => { stdout.write(`${flags.n}:${positionals[0]}`); return 3; } }) },
  ];
  const capture = async (argv: string[]): Promise<[number, string, string]> => {
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    const chunks: [string[], string[]] = [[], []];
    stdout.on('data', (c: Buffer) => chunks[0].push(c.toString()));
    stderr.on('data', (c: Buffer) => chunks[1].push(c.toString()));
    const code = await runCli(argv, table, { stdout, stderr });
    await new Promise((r) => setImmediate(r));
    return [code, chunks[0].join(''), chunks[1].join('')];
  };
  const [c1, , e1] = await capture(['user']);
  assert.equal(c1, 2);
  assert.match(e1, /^clinilora: 'lr': bad lr \(expected > 0, found -1\)\n/);
  const [c2, , e2] = await capture(['bug']);
  assert.equal(c2, 1);
  assert.match(e2, /TypeError: oops\n\s+at /);
  const [c3, o3] = await capture(['ok', '--n', '5', 'a.jsonl']);
  assert.deepEqual([c3, o3], [3, '5:a.jsonl']);
  const [c4, , e4] = await capture(['ok']);
  assert.equal(c4, 2);
  assert.match(e4, /missing argument <file>/);
  const [c5, , e5] = await capture(['ok', 'a', 'b']);
  assert.equal(c5, 2);
  assert.match(e5, /unexpected argument 'b'/);
});
