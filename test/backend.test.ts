/**
 * Backend selection. A tfjs backend (and the wasm thread count) is process-global, so every case runs
 * in a child process: `node --import tsx --input-type=module -e <code>`, which prints one JSON line.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { findPackage } from '../src/backend/packages.ts';
import { prepareWasmWorkerFiles } from '../src/backend/wasm-threads.ts';
import { Rng } from '../src/util/random.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const mod = (p: string): string => JSON.stringify(pathToFileURL(path.join(root, 'src', p)).href);
const cores = os.availableParallelism();
const tensorflowInstalled = ['@tensorflow/tfjs-node', '@tensorflow/tfjs-node-gpu'].some((n) => findPackage(n)?.name === n);

interface Child {
  status: number | null;
  json: Record<string, unknown>;
  stderr: string;
  stdout: string;
}

/** Runs `body` (ESM, top-level await) in a fresh Node with `initBackend` and `tf` in scope. */
function child(body: string, env: Record<string, string> = {}): Child {
  const code = `
    const { initBackend, currentBackend } = await import(${mod('backend/index.ts')});
    const { tf } = await import(${mod('backend/tf.ts')});
    const { Rng } = await import(${mod('util/random.ts')});
    const out = (o) => process.stdout.write(JSON.stringify(o) + '\\n');
    const fail = (e) => ({ error: { name: e.name, code: e.code, message: e.message } });
    ${body}`;
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('CLINILORA_')));
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
    cwd: root,
    env: { ...clean, ...env },
    encoding: 'utf8',
    timeout: 60_000,
    maxBuffer: 16 << 20,
  });
  const last = r.stdout.trim().split('\n').pop() ?? '';
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(last) as Record<string, unknown>;
  } catch {
    assert.fail(`child printed no JSON (status ${r.status}, signal ${r.signal}):\n${r.stdout}\n${r.stderr}`);
  }
  return { status: r.status, json, stderr: r.stderr, stdout: r.stdout };
}

// [M, K] × [K, N] with Rng data: big enough that XNNPACK splits it across threads.
const M = 96;
const K = 256;
const N = 80;
const MATMUL = `
  const rng = new Rng(7);
  const a = tf.tensor2d(rng.fillUniform(new Float32Array(${M * K}), -1, 1), [${M}, ${K}]);
  const b = tf.tensor2d(rng.fillUniform(new Float32Array(${K * N}), -1, 1), [${K}, ${N}]);
  const c = Array.from(tf.matMul(a, b).dataSync());`;

/** The same product in float64, independent of any tfjs backend. */
function referenceMatmul(): Float64Array {
  const rng = new Rng(7);
  const a = rng.fillUniform(new Float32Array(M * K), -1, 1);
  const b = rng.fillUniform(new Float32Array(K * N), -1, 1);
  const c = new Float64Array(M * N);
  for (let i = 0; i < M; i++) for (let k = 0; k < K; k++) for (let j = 0; j < N; j++) c[i * N + j]! += a[i * K + k]! * b[k * N + j]!;
  return c;
}

function maxAbsDiff(x: ArrayLike<number>, y: ArrayLike<number>): number {
  assert.equal(x.length, y.length);
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i]! - y[i]!));
  return m;
}

test('explicit cpu: chosen, 1 thread, no tfjs-node banner, correct matmul', () => {
  const r = child(`const info = await initBackend({ backend: 'cpu' }); ${MATMUL} out({ info, active: tf.getBackend(), c });`);
  assert.equal(r.status, 0, r.stderr);
  const info = r.json.info as { name: string; threads: number; source: string; tried: Array<{ name: string; status: string }> };
  assert.equal(info.name, 'cpu');
  assert.equal(r.json.active, 'cpu');
  assert.equal(info.threads, 1);
  assert.equal(info.source, 'option');
  assert.deepEqual(info.tried.map((t) => [t.name, t.status]), [['cpu', 'chosen']]);
  assert.doesNotMatch(r.stdout + r.stderr, /To speed things up dramatically/); // the banner itself
  const d = maxAbsDiff(r.json.c as number[], referenceMatmul());
  assert.ok(d < 1e-3, `cpu matmul differs from the float64 reference by ${d}`);
});

test('explicit wasm: SIMD, all cores as threads, same matmul as cpu, and the process exits', () => {
  const t0 = Date.now();
  const r = child(`const info = await initBackend({ backend: 'wasm' }); ${MATMUL} out({ info, active: tf.getBackend(), c });`);
  assert.equal(r.status, 0, r.stderr);
  assert.ok(Date.now() - t0 < 30_000, 'child did not exit promptly (a pthread worker keeps it alive?)');
  const info = r.json.info as { name: string; threads: number; simd: boolean };
  assert.equal(info.name, 'wasm');
  assert.equal(r.json.active, 'wasm');
  assert.equal(info.simd, true);
  assert.equal(info.threads, Math.min(cores, 8));
  if (cores >= 2) assert.ok(info.threads >= 2);
  const cpu = child(`await initBackend({ backend: 'cpu' }); ${MATMUL} out({ c });`);
  const d = maxAbsDiff(r.json.c as number[], cpu.json.c as number[]);
  assert.ok(d < 1e-3, `wasm and cpu matmul differ by ${d}`);
  assert.ok(maxAbsDiff(r.json.c as number[], referenceMatmul()) < 1e-3);
});

test('wasm thread count: option 2 gives 2 threads (≥ 2 cores); CLINILORA_THREADS=1 gives 1', { skip: cores < 2 }, () => {
  const two = child(`const info = await initBackend({ backend: 'wasm', threads: 2 }); out({ info });`);
  assert.equal((two.json.info as { threads: number }).threads, 2, two.stderr);
  const one = child(`const info = await initBackend(); out({ info });`, { CLINILORA_BACKEND: 'wasm', CLINILORA_THREADS: '1' });
  const info = one.json.info as { name: string; threads: number; source: string };
  assert.deepEqual([info.name, info.threads, info.source], ['wasm', 1, 'env']);
});

test('same backend again returns the same info; switching to cpu and back works; threads are fixed', () => {
  const r = child(`
    const a = await initBackend({ backend: 'wasm' });
    const b = await initBackend({ backend: 'wasm' });
    const c = await initBackend({ backend: 'cpu' });
    const onCpu = tf.getBackend();
    const d = await initBackend({ backend: 'wasm' });
    let e; try { await initBackend({ backend: 'wasm', threads: a.threads === 1 ? 2 : 1 }); } catch (err) { e = fail(err).error; }
    out({ same: a === b, c: c.name, onCpu, d: d.name, dThreads: d.threads, aThreads: a.threads, after: tf.getBackend(), e, current: currentBackend().name });`);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.json.same, true);
  assert.equal(r.json.onCpu, 'cpu');
  assert.equal(r.json.d, 'wasm');
  assert.equal(r.json.dThreads, r.json.aThreads);
  assert.equal(r.json.after, 'wasm');
  assert.equal(r.json.current, 'wasm');
  const e = r.json.e as { code: string; message: string };
  assert.equal(e.code, 'E_BACKEND');
  assert.match(e.message, /fixed at its first start/);
});

test('invalid CLINILORA_BACKEND is an error naming the variable, the value and the choices', () => {
  const r = child(`try { await initBackend(); out({ ok: true }); } catch (e) { out(fail(e)); }`, { CLINILORA_BACKEND: 'gpu' });
  const e = r.json.error as { name: string; code: string; message: string };
  assert.equal(e.name, 'CliniloraError');
  assert.equal(e.code, 'E_BACKEND');
  assert.match(e.message, /CLINILORA_BACKEND/);
  assert.match(e.message, /"gpu"/);
  assert.match(e.message, /tensorflow \| wasm \| cpu/);
});

test('invalid CLINILORA_THREADS is an error', () => {
  const r = child(`try { await initBackend({ backend: 'wasm' }); out({ ok: true }); } catch (e) { out(fail(e)); }`, { CLINILORA_THREADS: 'lots' });
  const e = r.json.error as { code: string; message: string };
  assert.equal(e.code, 'E_BACKEND');
  assert.match(e.message, /CLINILORA_THREADS/);
  assert.match(e.message, /lots/);
});

test('tensorflow: an unavailable explicit choice says why and what is available', () => {
  const r = child(`try { const info = await initBackend({ backend: 'tensorflow' }); out({ info }); } catch (e) { out(fail(e)); }`);
  if (tensorflowInstalled) {
    assert.equal((r.json.info as { name: string }).name, 'tensorflow');
    return;
  }
  const e = r.json.error as { code: string; message: string };
  assert.equal(e.code, 'E_BACKEND');
  assert.match(e.message, /backend 'tensorflow' is not available/);
  assert.match(e.message, /@tensorflow\/tfjs-node: not installed/);
  assert.match(e.message, /one of: wasm, cpu/);
});

test('automatic choice: tensorflow when installed, else wasm, with reasons for the others', () => {
  const r = child(`const info = await initBackend(); out({ info });`);
  const info = r.json.info as { name: string; source: string; tried: Array<{ name: string; status: string; reason: string }> };
  assert.equal(info.source, 'auto');
  assert.deepEqual(info.tried.map((t) => t.name), ['tensorflow', 'wasm', 'cpu']);
  if (tensorflowInstalled) {
    assert.equal(info.name, 'tensorflow');
  } else {
    assert.equal(info.name, 'wasm');
    assert.equal(info.tried[0]!.status, 'failed');
    assert.match(info.tried[0]!.reason, /tfjs-node/);
    assert.equal(info.tried[2]!.status, 'skipped');
  }
});

test('wasm worker scripts: reused when intact, rewritten when changed', () => {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'clinilora-backend-test-'));
  const a = prepareWasmWorkerFiles(tmp);
  assert.equal(path.dirname(a.workerPath), path.join(tmp, path.basename(a.dir)));
  const worker = readFileSync(a.workerPath, 'utf8');
  assert.match(worker, /^"use strict";\{const mainPath=/);
  assert.ok(worker.includes(JSON.stringify(a.mainPath)));
  writeFileSync(a.workerPath, 'throw new Error("tampered")');
  const b = prepareWasmWorkerFiles(tmp);
  assert.equal(b.workerPath, a.workerPath);
  assert.equal(readFileSync(b.workerPath, 'utf8'), worker);
  rmSync(tmp, { recursive: true, force: true });
});
