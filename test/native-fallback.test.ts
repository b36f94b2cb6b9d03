/**
 * The native addon's edges, each in a child process (the addon and the tfjs kernel registry are
 * process-global): switched off by CLINILORA_NATIVE=0, missing, or broken, clinilora keeps tfjs's own
 * kernels and says why; native/build.mjs never fails an install; the addon's thread pool survives
 * many back-to-back calls and resizes (a start-up race once hung it).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { DEFAULT_ADDON_PATH } from '../src/backend/native-addon.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const src = (p: string): string => pathToFileURL(path.join(root, p)).href;
const built = existsSync(DEFAULT_ADDON_PATH);
const notBuilt = built ? false : 'native addon not built (node native/build.mjs)';

/** Runs an ESM TypeScript snippet with tsx from the repo root; returns its last stdout line as JSON. */
function child(code: string, env: Record<string, string>, timeout = 60_000): Record<string, unknown> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'clinilora-native-'));
  try {
    const file = path.join(dir, 'run.mts');
    writeFileSync(file, code);
    const r = spawnSync(process.execPath, ['--import', 'tsx', file], { cwd: root, encoding: 'utf8', timeout, env: { ...process.env, ...env } });
    assert.equal(r.signal, null, `child killed (${r.signal}): hung?\n${r.stderr}`);
    assert.equal(r.status, 0, r.stderr);
    const last = r.stdout.trim().split('\n').pop()!;
    return JSON.parse(last) as Record<string, unknown>;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Starts wasm, multiplies [[1,2],[3,4]]·[[5,6],[7,8]] (and a transposed pair) and reports the native status. */
const probe = `
import { tf } from ${JSON.stringify(src('src/backend/tf.ts'))};
import { initBackend } from ${JSON.stringify(src('src/backend/index.ts'))};
import { nativeStatus } from ${JSON.stringify(src('src/backend/native.ts'))};
const info = await initBackend({ backend: 'wasm' });
const a = tf.tensor2d([1, 2, 3, 4], [2, 2]);
const b = tf.tensor2d([5, 6, 7, 8], [2, 2]);
const c = Array.from(tf.matMul(a, b).dataSync());
const ct = Array.from(tf.matMul(a, b, true, true).dataSync());
const s = nativeStatus();
console.log(JSON.stringify({ nativeMatmul: info.nativeMatmul, active: s.active, loaded: s.loaded, reason: s.reason ?? '', calls: s.calls, c, ct }));
`;

// [[1,2],[3,4]]·[[5,6],[7,8]] and aᵀ·bᵀ, by hand.
const C = [19, 22, 43, 50];
const CT = [23, 31, 34, 46];

test('CLINILORA_NATIVE=0: tfjs kernels, status says why, results unchanged', () => {
  const r = child(probe, { CLINILORA_NATIVE: '0' });
  assert.equal(r.nativeMatmul, false);
  assert.equal(r.active, false);
  assert.equal(r.loaded, false);
  assert.match(String(r.reason), /CLINILORA_NATIVE=0/);
  assert.deepEqual(r.calls, { native: 0, fallback: 0 }); // the override is not even installed
  assert.deepEqual(r.c, C);
  assert.deepEqual(r.ct, CT);
});

test('addon missing: falls back to wasm and says it is not built', () => {
  const r = child(probe, { CLINILORA_NATIVE_ADDON: path.join(os.tmpdir(), 'no-such-dir', 'clinilora_native.node') });
  assert.equal(r.nativeMatmul, false);
  assert.equal(r.active, false);
  assert.match(String(r.reason), /not built/);
  assert.deepEqual(r.c, C);
  assert.deepEqual(r.ct, CT);
});

test('addon broken (not a shared object): falls back and says it does not load', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'clinilora-native-bad-'));
  try {
    const bad = path.join(dir, 'clinilora_native.node');
    writeFileSync(bad, 'not an ELF file');
    const r = child(probe, { CLINILORA_NATIVE_ADDON: bad });
    assert.equal(r.active, false);
    assert.match(String(r.reason), /does not load/);
    assert.deepEqual(r.c, C);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('addon present: the same probe runs natively', { skip: notBuilt }, () => {
  const r = child(probe, {});
  assert.equal(r.nativeMatmul, true);
  assert.equal(r.active, true);
  assert.deepEqual(r.calls, { native: 2, fallback: 0 });
  assert.deepEqual(r.c, C);
  assert.deepEqual(r.ct, CT);
});

test('thread pool: thousands of back-to-back split calls and resizes finish (no hang) with right sums', { skip: notBuilt }, () => {
  const code = `
import { loadNativeAddon } from ${JSON.stringify(src('src/backend/native-addon.ts'))};
const l = loadNativeAddon();
if (!l.ok) throw new Error(l.reason);
const g = l.addon;
// 128³ splits over the pool; 20 × 8000 × 24 splits k; sizes chosen so every element of c is k · 0.5 · 0.25.
const shapes = [[128, 128, 128], [20, 24, 8000], [8, 8, 8]];
let bad = 0;
for (let i = 0; i < 3000; i++) {
  if (i % 500 === 0) g.setThreads(1 + ((i / 500) % 3));
  const [m, n, k] = shapes[i % 3];
  const a = new Float32Array(m * k).fill(0.5), b = new Float32Array(k * n).fill(0.25), c = new Float32Array(m * n);
  g.gemm(a, b, c, 1, 1, 1, m, n, k, i % 2 === 0, i % 4 < 2);
  if (c.some((x) => x !== k * 0.125)) bad++;
}
g.setThreads(2);
console.log(JSON.stringify({ bad }));
`;
  const r = child(code, {}, 120_000);
  assert.equal(r.bad, 0);
});

test('native/build.mjs: builds a loadable addon from a copy of native/, and exits 0 with one line when it cannot', { skip: built ? false : 'no toolchain/OpenBLAS here (the addon is not built)' }, () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'clinilora-native-build-'));
  try {
    for (const f of ['binding.gyp', 'build.mjs', 'src']) cpSync(path.join(root, 'native', f), path.join(dir, f), { recursive: true });
    const ok = spawnSync(process.execPath, [path.join(dir, 'build.mjs')], { encoding: 'utf8', timeout: 300_000 });
    assert.equal(ok.status, 0, ok.stderr);
    assert.match(ok.stdout, /^clinilora native: built /);
    const addon = path.join(dir, 'build', 'Release', 'clinilora_native.node');
    assert.ok(existsSync(addon));
    // A broken compiler: the build fails, the script still exits 0 and prints one line.
    const fail = spawnSync(process.execPath, [path.join(dir, 'build.mjs')], { encoding: 'utf8', timeout: 300_000, env: { ...process.env, CXX: '/nonexistent/c++' } });
    assert.equal(fail.status, 0, fail.stderr);
    assert.equal(fail.stdout.trim().split('\n').length, 1, fail.stdout);
    assert.match(fail.stdout, /^clinilora native: not built \(.*\); using wasm$/m);
    const off = spawnSync(process.execPath, [path.join(dir, 'build.mjs')], { encoding: 'utf8', env: { ...process.env, CLINILORA_NATIVE: '0' } });
    assert.equal(off.status, 0);
    assert.match(off.stdout, /skipped \(CLINILORA_NATIVE=0\)/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
