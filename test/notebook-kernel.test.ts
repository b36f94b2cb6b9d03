/**
 * The "clinilora (TypeScript)" kernel: `clinilora-kernel.js install --prefix` writes a kernelspec
 * Jupyter lists, and the kernel passes jupyter_kernel_test (test/kernel/test_kernel.py, run with
 * Debian's /usr/bin/python3). Skipped only when that Python lacks jupyter_kernel_test.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const PYTHON = '/usr/bin/python3';
const probe = spawnSync(PYTHON, ['-c', 'import jupyter_kernel_test, jupyter_client'], { encoding: 'utf8' });
const skip = probe.status === 0 ? false : `${PYTHON} lacks jupyter_kernel_test/jupyter_client (Debian: python3-jupyter-kernel-test, python3-jupyter-client)`;

const tmp = mkdtempSync(join(tmpdir(), 'clinilora-kernel-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

const env = {
  ...process.env,
  JUPYTER_PATH: join(tmp, 'share', 'jupyter'),
  JUPYTER_RUNTIME_DIR: join(tmp, 'runtime'),
  JUPYTER_DATA_DIR: join(tmp, 'data'),
  CLINILORA_HOME: tmp,
  CLINILORA_KERNEL_NAME: 'clinilora-test',
  PYDEVD_DISABLE_FILE_VALIDATION: '1',
};

test('install writes a kernelspec that launches our kernel entry', () => {
  const r = spawnSync(process.execPath, [join(ROOT, 'bin', 'clinilora-kernel.js'), 'install', '--prefix', tmp, '--name', 'clinilora-test'], { encoding: 'utf8', env });
  assert.equal(r.status, 0, r.stderr);
  const spec = JSON.parse(readFileSync(join(tmp, 'share', 'jupyter', 'kernels', 'clinilora-test', 'kernel.json'), 'utf8')) as { argv: string[]; display_name: string; language: string };
  assert.equal(spec.display_name, 'clinilora (TypeScript)');
  assert.equal(spec.language, 'typescript');
  assert.equal(spec.argv[0], process.execPath);
  assert.equal(spec.argv[1], join(ROOT, 'bin', 'clinilora-kernel.js'));
  assert.ok(spec.argv.includes('{connection_file}'));
  const bad = spawnSync(process.execPath, [join(ROOT, 'bin', 'clinilora-kernel.js'), 'install', '--bogus'], { encoding: 'utf8', env });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /unknown argument '--bogus'/);
});

test('Jupyter lists the kernel', { skip }, () => {
  const r = spawnSync(PYTHON, ['-m', 'jupyter_client.kernelspecapp', 'list', '--json'], { encoding: 'utf8', env });
  assert.equal(r.status, 0, r.stderr);
  const specs = (JSON.parse(r.stdout) as { kernelspecs: Record<string, { spec: { display_name: string } }> }).kernelspecs;
  assert.equal(specs['clinilora-test']?.spec.display_name, 'clinilora (TypeScript)');
});

test('jupyter_kernel_test conformance', { skip, timeout: 240_000 }, () => {
  const r = spawnSync(PYTHON, ['-m', 'unittest', 'discover', '-v', '-s', join(ROOT, 'test', 'kernel'), '-p', 'test_kernel.py'], { encoding: 'utf8', env, timeout: 230_000 });
  const out = `${r.stdout}\n${r.stderr}`;
  assert.equal(r.status, 0, out);
  // The suite's own checks that we feed samples to must have run, not been skipped.
  for (const name of ['kernel_info', 'execute_stdout', 'execute_stderr', 'error', 'execute_result', 'display_data', 'completion', 'inspect', 'is_complete', 'clear_output', 'update_display_data', 'error_reply_fields', 'cell_origin']) {
    assert.match(out, new RegExp(`test_${name} \\(.*\\n?.*\\.\\.\\. ok`), `test_${name} did not pass:\n${out}`);
  }
});
