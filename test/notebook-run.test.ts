/**
 * `clinilora notebooks run`: papermill-style parameter injection, the executed notebook kept as an
 * artifact of a `notebook` run, run origins seen by cells, and a failing cell failing the command
 * with the notebook, the right cell index and the error — in-process, and under Jupyter when
 * /usr/bin/python3 has nbclient.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { after, test } from 'node:test';
import { main } from '../src/cli/main.ts';
import { cellSource, injectParameters, parseParameters, readNotebook, type Notebook, type NotebookCell } from '../src/notebook/nbformat.ts';
import type { RunRecord } from '../src/tracker/schema.ts';

const tmp = mkdtempSync(join(tmpdir(), 'clinilora-nbrun-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
const home = join(tmp, 'home');

const hasJupyter = spawnSync('/usr/bin/python3', ['-c', 'import nbclient, nbformat, jupyter_client'], { stdio: 'ignore' }).status === 0;

const md = (s: string): NotebookCell => ({ cell_type: 'markdown', metadata: {}, source: s });
const code = (s: string, tags: string[] = [], id?: string): NotebookCell => ({ cell_type: 'code', metadata: tags.length > 0 ? { tags } : {}, source: s, outputs: [], execution_count: null, ...(id !== undefined ? { id } : {}) });
const notebook = (cells: NotebookCell[]): Notebook => ({ nbformat: 4, nbformat_minor: 5, metadata: {}, cells });

function writeNb(name: string, cells: NotebookCell[]): string {
  const file = join(tmp, name);
  writeFileSync(file, JSON.stringify(notebook(cells)));
  return file;
}

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = new PassThrough();
  const err = new PassThrough();
  let stdout = '';
  let stderr = '';
  out.on('data', (b: Buffer) => (stdout += b.toString()));
  err.on('data', (b: Buffer) => (stderr += b.toString()));
  const code = await main(args, { stdout: out, stderr: err });
  return { code, stdout, stderr };
}

const runOf = (text: string): RunRecord => {
  const id = /run (\d{8}-\d{6}-\d{3}-[0-9a-f]+)/.exec(text)?.[1];
  assert.ok(id !== undefined, `no run id in: ${text}`);
  return JSON.parse(readFileSync(join(home, 'experiments', 'runs', id, 'run.json'), 'utf8')) as RunRecord;
};

const outputsText = (c: NotebookCell): string =>
  (c.outputs ?? [])
    .map((o) => ('text' in o ? [o.text].flat().join('') : 'data' in o ? [o.data['text/plain'] as string | string[]].flat().join('') : `${o.ename}: ${o.evalue}`))
    .join('\n');

test('parseParameters: JSON values, plain strings otherwise, identifiers only', () => {
  assert.deepEqual(parseParameters(['n=8', 'lr=1e-3', 'name=auditor', 'flag=true', 'xs=[1,2]', 's="7"', 'e=']), { n: 8, lr: 0.001, name: 'auditor', flag: true, xs: [1, 2], s: '7', e: '' });
  assert.throws(() => parseParameters(['1x=3']), /bad parameter '1x=3'/);
  assert.throws(() => parseParameters(['novalue']), /bad parameter/);
});

test('injectParameters: a tagged cell right after "parameters", replacing an earlier injection; unknown names refused', () => {
  const nb = notebook([md('# t'), code('const n = 2;\nlet label = "a";', ['parameters']), code('n')]);
  const first = injectParameters(nb, { n: 5 });
  assert.equal(first.injectedIndex, 2);
  assert.deepEqual(first.notebook.cells[2]!.metadata.tags, ['injected-parameters']);
  assert.match(cellSource(first.notebook.cells[2]!), /^const n = 5;$/m);
  assert.deepEqual(first.sourceIndex, [0, 1, null, 2]);
  assert.equal(nb.cells.length, 3, 'the input is not modified');
  // Running an executed notebook again replaces its injected cell.
  const again = injectParameters(first.notebook, { label: 'b' });
  assert.equal(again.notebook.cells.length, 4);
  assert.match(cellSource(again.notebook.cells[2]!), /const label = "b";/);
  assert.doesNotMatch(cellSource(again.notebook.cells[2]!), /const n/);
  assert.deepEqual(injectParameters(nb, {}).sourceIndex, [0, 1, 2]);
  assert.throws(() => injectParameters(nb, { m: 1 }, 'x.ipynb'), (e: Error) => /unknown parameter 'm'/.test(e.message) && /one of n, label/.test(e.message) && /x\.ipynb/.test(e.message));
  assert.throws(() => injectParameters(notebook([code('1')]), { n: 1 }, 'y.ipynb'), /no cell tagged "parameters"/);
});

test('readNotebook: errors name the file and the field', () => {
  const bad = join(tmp, 'bad.ipynb');
  writeFileSync(bad, '{"nbformat": 3, "cells": []}');
  assert.throws(() => readNotebook(bad), (e: Error) => e.message.includes(bad) && /'nbformat'/.test(e.message) && /expected 4, found 3/.test(e.message));
  writeFileSync(bad, '{"nbformat": 4, "cells": [{"cell_type": "cod", "source": ""}]}');
  assert.throws(() => readNotebook(bad), /'cells\[0\]\.cell_type'/);
  writeFileSync(bad, 'not json');
  assert.throws(() => readNotebook(bad), /invalid JSON/);
});

test('notebooks run (in-process): parameters injected, origin seen by cells, executed notebook kept as the run artifact', async () => {
  const file = writeNb('params.ipynb', [
    md('# params'),
    code('const n = 2;\nconst word = "default";', ['parameters'], 'p'),
    code("import { notebookOrigin } from 'clinilora/notebook';\nconsole.log(`n=${n} word=${word}`);\nconst o = notebookOrigin();\nconsole.log(`origin ${o.cell} ${o.cellId} ${o.run}`);", [], 'work'),
    code('n * 10', [], 'last'),
    code("import { openRun } from 'clinilora';\nconst child = await openRun({ config: { task: 'probe', seed: 0 }, kind: 'eval', gitDir: '/nonexistent' });\nchild.finish('completed');\nconsole.log(`child ${child.id}`);", [], 'child'),
  ]);
  const r = await cli(['notebooks', 'run', file, '-p', 'n=5', '-p', 'word=hello', '--executor', 'inprocess', '--home', home, '-q']);
  assert.equal(r.code, 0, r.stderr);
  const run = runOf(r.stdout);
  assert.equal(run.kind, 'notebook');
  assert.equal(run.status, 'completed');
  assert.deepEqual(run.config.parameters, { n: 5, word: 'hello' });
  assert.equal(run.config.executor, 'inprocess');
  assert.equal(run.artifacts.length, 1);
  const art = run.artifacts[0]!;
  assert.equal(art.kind, 'notebook');
  const executedFile = join(home, art.path);
  assert.equal(createHash('sha256').update(readFileSync(executedFile)).digest('hex'), art.sha256);
  const executed = readNotebook(executedFile);
  assert.equal(executed.cells.length, 6);
  assert.deepEqual(executed.cells[2]!.metadata.tags, ['injected-parameters']);
  const work = outputsText(executed.cells[3]!);
  assert.match(work, /n=5 word=hello/);
  // The origin names the cell in the notebook as given (index 2: the injected cell is not counted).
  assert.match(work, new RegExp(`origin 2 work ${run.id}`));
  assert.equal(outputsText(executed.cells[4]!), '50');
  assert.deepEqual(
    executed.cells.filter((c) => c.cell_type === 'code').map((c) => c.execution_count),
    [1, 2, 3, 4, 5],
  );
  // A run opened in a cell lands in the same home and names the notebook run as its parent.
  const childId = /child (\S+)/.exec(outputsText(executed.cells[5]!))?.[1];
  assert.ok(childId !== undefined);
  const child = JSON.parse(readFileSync(join(home, 'experiments', 'runs', childId, 'run.json'), 'utf8')) as RunRecord;
  assert.deepEqual(child.parents.filter((p) => p.role === 'notebook'), [{ id: run.id, role: 'notebook' }]);
});

const broken = (): string =>
  writeNb('broken.ipynb', [
    md('# broken'),
    code('const limit = 1;', ['parameters']),
    code("console.log('fine');"),
    md('next cell fails'),
    code("throw new RangeError('limit exceeded: ' + limit);"),
    code("console.log('never');"),
  ]);

for (const executor of ['inprocess', 'jupyter'] as const) {
  test(`notebooks run (${executor}): a failing cell fails the command with the notebook, cell index and error`, { skip: executor === 'jupyter' && !hasJupyter ? '/usr/bin/python3 lacks nbclient (python3-nbconvert)' : false, timeout: 120_000 }, async () => {
    const file = broken();
    // With a parameter injected, the index still counts cells of the notebook as given.
    const r = await cli(['notebooks', 'run', file, '-p', 'limit=3', '--executor', executor, '--home', home, '-q']);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stderr, new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: cell 4 failed: RangeError: limit exceeded: 3`));
    const run = runOf(r.stderr);
    assert.equal(run.status, 'failed');
    assert.equal(run.kind, 'notebook');
    assert.match(run.error?.message ?? '', /cell 4 failed/);
    const executed = readNotebook(join(home, run.artifacts[0]!.path));
    const failing = executed.cells[5]!; // cell 4 of the source, after the injected one
    assert.deepEqual(
      (failing.outputs ?? []).map((o) => o.output_type),
      ['error'],
    );
    assert.match(outputsText(executed.cells[3]!), /fine/);
    assert.equal(executed.cells[6]!.execution_count ?? null, null, 'execution stopped at the failing cell');
    assert.equal((executed.cells[6]!.outputs ?? []).length, 0);
  });
}

test('notebooks run: bad usage is a user error', async () => {
  const file = writeNb('plain.ipynb', [code('1')]);
  const r = await cli(['notebooks', 'run', file, '-p', 'x=1', '--executor', 'inprocess', '--home', home]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /no cell tagged "parameters"/);
  const bad = await cli(['notebooks', 'run', file, '--executor', 'docker']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /unknown executor/);
  const ls = await cli(['notebooks', 'ls', broken()]);
  assert.equal(ls.code, 0);
  assert.match(ls.stdout, /parameters: limit/);
});
