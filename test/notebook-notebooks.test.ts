/**
 * Every notebook in notebooks/ runs headless with its CI parameters (Jupyter with the clinilora
 * kernel when /usr/bin/python3 has nbclient, else in-process) with no error output; their own
 * asserts check their key results. A notebook without an entry in CI_PARAMETERS is a failure, so a
 * new notebook cannot skip CI.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { cellSource, readNotebook } from '../src/notebook/nbformat.ts';
import { runNotebook } from '../src/notebook/run.ts';

const DIR = fileURLToPath(new URL('../notebooks/', import.meta.url));
/** Small parameters for CI (empty: the parameters cell's defaults are already small). */
const CI_PARAMETERS: Record<string, Record<string, unknown>> = {
  '01-lora-step-by-step.ipynb': {},
  '02-quantization.ipynb': { maxRows: 128 },
  '03-auditor.ipynb': {},
  '04-heart-risk.ipynb': {},
  '05-alpacare-safety.ipynb': {},
  '06-reproduce-a-run.ipynb': {},
};

const home = mkdtempSync(join(tmpdir(), 'clinilora-notebooks-'));
after(() => rmSync(home, { recursive: true, force: true }));

const notebooks = readdirSync(DIR).filter((f) => f.endsWith('.ipynb')).sort();

test('every notebook has CI parameters and a parameters cell', () => {
  assert.ok(notebooks.length >= 2);
  for (const f of notebooks) {
    assert.ok(f in CI_PARAMETERS, `${f} has no CI parameters in this test`);
    const nb = readNotebook(join(DIR, f));
    assert.ok(nb.cells.some((c) => c.cell_type === 'code' && (c.metadata.tags ?? []).includes('parameters')), `${f} has no "parameters" cell`);
    assert.ok(nb.cells.every((c) => (c.outputs ?? []).length === 0), `${f} is committed with outputs (clear them)`);
    assert.equal((nb.metadata.kernelspec as { name?: string } | undefined)?.name, 'clinilora', `${f} names the clinilora kernel`);
    assert.ok(nb.cells.some((c) => c.cell_type === 'code' && /\bassert\b/.test(cellSource(c))), `${f} checks its results`);
  }
});

for (const f of notebooks) {
  test(`${f} runs headless with its CI parameters`, { timeout: 110_000 }, async () => {
    const r = await runNotebook(join(DIR, f), { parameters: CI_PARAMETERS[f] ?? {}, root: home });
    assert.equal(r.status, 'ok', r.failure !== null ? `cell ${r.failure.cell}: ${r.failure.ename}: ${r.failure.evalue}` : '');
    const executed = readNotebook(r.executedPath!);
    const code = executed.cells.filter((c) => c.cell_type === 'code');
    assert.ok(code.every((c) => typeof c.execution_count === 'number'), 'every code cell ran');
    for (const [i, c] of executed.cells.entries()) {
      for (const o of c.outputs ?? []) {
        assert.notEqual(o.output_type, 'error', `cell ${i} has an error output`);
        if (o.output_type === 'stream') assert.notEqual(o.name, 'stderr', `cell ${i} wrote to stderr: ${[o.text].flat().join('')}`);
      }
    }
    // Each notebook shows something beyond text (a table, a figure or a diagram).
    assert.ok(executed.cells.some((c) => (c.outputs ?? []).some((o) => 'data' in o && Object.keys(o.data).some((k) => k !== 'text/plain'))));
  });
}
