/**
 * Picks and starts the TensorFlow.js backend, once per process (a tfjs backend is process-global).
 *
 * Order when nothing is asked for: `tensorflow` (libtensorflow via @tensorflow/tfjs-node-gpu or
 * -node, when installed), then `wasm` (SIMD, all cores: see wasm-threads.ts), then `cpu` (plain JS,
 * ~50× slower than wasm). An explicit choice (`{backend}`, else CLINILORA_BACKEND) wins, and an
 * unavailable explicit choice is an error saying why and what is available.
 */
import os from 'node:os';
import { tf } from './tf.ts';
import { loadTensorflowBackend } from './tensorflow.ts';
import { MAX_WASM_THREADS, startWasm, type WasmStart } from './wasm-threads.ts';
import { installNativeKernels } from './native.ts';
import { installWasmSlice } from './wasm-slice.ts';
import { CliniloraError } from '../errors.ts';

export type BackendName = 'tensorflow' | 'wasm' | 'cpu';
export const BACKEND_NAMES: readonly BackendName[] = ['tensorflow', 'wasm', 'cpu'];

export interface BackendOptions {
  /** Explicit choice; wins over CLINILORA_BACKEND. An unavailable explicit choice is an error. */
  backend?: BackendName;
  /** wasm threads; wins over CLINILORA_THREADS; default all cores (os.availableParallelism(), at most 8). */
  threads?: number;
}

/** What happened to one backend while choosing. */
export interface BackendAttempt {
  name: BackendName;
  status: 'chosen' | 'failed' | 'skipped';
  reason: string;
}

export interface BackendInfo {
  name: BackendName;
  /** Compute threads: wasm pthreads; for tensorflow libtensorflow's default (all cores); cpu 1. */
  threads: number;
  /** True when the wasm backend runs its SIMD binary. */
  simd: boolean;
  /** Where the choice came from. */
  source: 'option' | 'env' | 'auto';
  /** Every backend in priority order, with why it was or was not chosen (for doctor). */
  tried: BackendAttempt[];
  /** Anything the user should know (e.g. fewer threads than asked for). */
  notes: string[];
  /** True when large matmuls run through the native OpenBLAS addon (native.ts; CLINILORA_NATIVE=0 turns it off). */
  nativeMatmul: boolean;
}

let current: BackendInfo | undefined;
let wasmStarted: WasmStart | undefined;
let queue: Promise<unknown> = Promise.resolve();

export function currentBackend(): BackendInfo | undefined {
  return current;
}

export function initBackend(opts: BackendOptions = {}): Promise<BackendInfo> {
  // Serialise: two concurrent starts would both try to initialise the wasm module.
  const run = queue.then(() => init(opts));
  queue = run.catch(() => undefined);
  return run;
}

function parseName(value: string, field: string): BackendName {
  if ((BACKEND_NAMES as readonly string[]).includes(value)) return value as BackendName;
  throw new CliniloraError('E_BACKEND', 'unknown backend', {
    field,
    expected: BACKEND_NAMES.join(' | '),
    found: JSON.stringify(value),
  });
}

function parseThreads(value: number, field: string, raw: string = String(value)): number {
  if (Number.isInteger(value) && value >= 1 && value <= MAX_WASM_THREADS) return value;
  throw new CliniloraError('E_BACKEND', 'bad thread count', {
    field,
    expected: `an integer from 1 to ${MAX_WASM_THREADS} (the wasm backend's thread pool)`,
    found: JSON.stringify(raw),
  });
}

interface Resolved {
  wanted: BackendName | undefined;
  source: BackendInfo['source'];
  field: string;
  threads: number;
  threadsExplicit: boolean;
}

function resolve(opts: BackendOptions): Resolved {
  const env = process.env.CLINILORA_BACKEND;
  let wanted: BackendName | undefined;
  let source: BackendInfo['source'] = 'auto';
  let field = 'backend';
  if (opts.backend !== undefined) {
    wanted = parseName(opts.backend, 'backend');
    source = 'option';
  } else if (env !== undefined && env !== '') {
    wanted = parseName(env, 'CLINILORA_BACKEND');
    source = 'env';
    field = 'CLINILORA_BACKEND';
  }
  const envThreads = process.env.CLINILORA_THREADS;
  let threads = Math.min(os.availableParallelism(), MAX_WASM_THREADS);
  let threadsExplicit = true;
  if (opts.threads !== undefined) threads = parseThreads(opts.threads, 'threads');
  else if (envThreads !== undefined && envThreads !== '') threads = parseThreads(Number(envThreads), 'CLINILORA_THREADS', envThreads);
  else threadsExplicit = false;
  return { wanted, source, field, threads, threadsExplicit };
}

interface Started {
  threads: number;
  simd: boolean;
  notes: string[];
}

/** Starts one backend, or returns why it cannot run here. */
async function tryStart(name: BackendName, r: Resolved): Promise<Started | string> {
  try {
    if (name === 'tensorflow') {
      const load = await loadTensorflowBackend();
      if (!load.ok) return load.reasons.join('; ');
      if (!(await tf.setBackend('tensorflow'))) return 'tf.setBackend("tensorflow") failed';
      return { threads: os.availableParallelism(), simd: false, notes: [`native backend from ${load.pkg}`] };
    }
    if (name === 'wasm') {
      if (wasmStarted === undefined) {
        wasmStarted = await startWasm(r.threads);
      } else {
        if (!(await tf.setBackend('wasm'))) return 'tf.setBackend("wasm") failed';
      }
      installWasmSlice();
      const notes = wasmStarted.note !== undefined ? [wasmStarted.note] : [];
      return { threads: wasmStarted.threads, simd: wasmStarted.simd, notes };
    }
    if (!(await tf.setBackend('cpu'))) return 'tf.setBackend("cpu") failed';
    silenceCpuBanner();
    return { threads: 1, simd: false, notes: [] };
  } catch (e) {
    return String((e as Error | null)?.message ?? e).split('\n')[0]!;
  }
}

/**
 * The cpu backend prints "Hi, looks like you are running TensorFlow.js in Node.js..." on its first
 * tensor. We know (doctor reports it), and the banner would land in JSON output: mark it as shown.
 */
function silenceCpuBanner(): void {
  const be = tf.backend() as unknown as { firstUse?: boolean };
  if (typeof be.firstUse === 'boolean') be.firstUse = false;
}

async function init(opts: BackendOptions): Promise<BackendInfo> {
  const r = resolve(opts);
  if (wasmStarted !== undefined && r.threadsExplicit && r.threads !== wasmStarted.threads && r.wanted !== 'cpu' && r.wanted !== 'tensorflow') {
    // Do not fall back to another backend silently: the caller asked for a thread count we cannot give.
    throw new CliniloraError('E_BACKEND', `wasm already runs ${wasmStarted.threads} thread(s) in this process; the count is fixed at its first start`, {
      field: opts.threads !== undefined ? 'threads' : 'CLINILORA_THREADS',
      expected: String(wasmStarted.threads),
      found: String(r.threads),
      hint: 'set the thread count before the first initBackend() call, or run a separate process',
    });
  }
  if (current !== undefined && (r.wanted === undefined || r.wanted === current.name) && tf.getBackend() === current.name) {
    return current;
  }
  const order = r.wanted !== undefined ? [r.wanted] : BACKEND_NAMES;
  const tried: BackendAttempt[] = [];
  let chosen: { name: BackendName; started: Started } | undefined;
  for (const name of order) {
    if (chosen !== undefined) {
      tried.push({ name, status: 'skipped', reason: `lower priority than ${chosen.name}` });
      continue;
    }
    const res = await tryStart(name, r);
    if (typeof res === 'string') {
      tried.push({ name, status: 'failed', reason: res });
    } else {
      // Without SIMD wasm is several times slower, yet still far faster than cpu: keep it, say so.
      if (name === 'wasm' && !res.simd) res.notes.push('wasm runs without SIMD in this runtime');
      chosen = { name, started: res };
      tried.push({ name, status: 'chosen', reason: r.wanted !== undefined ? `asked for (${r.source})` : 'first available in priority order' });
    }
  }
  if (chosen === undefined) {
    const failed = tried[0]!;
    const available = await availableBackends(r.wanted);
    throw new CliniloraError('E_BACKEND', `backend '${failed.name}' is not available: ${failed.reason}`, {
      field: r.field,
      expected: available.length > 0 ? `one of: ${available.join(', ')}` : 'an available backend',
      found: failed.name,
      hint:
        failed.name === 'tensorflow'
          ? 'install @tensorflow/tfjs-node (its install downloads libtensorflow 2.9.1; -gpu also needs CUDA 11.2 + cuDNN 8.1), or unset CLINILORA_BACKEND to pick automatically'
          : 'unset CLINILORA_BACKEND (or drop --backend) to pick automatically',
    });
  }
  // wasm and cpu get the native matmul kernel when the addon is built (native.ts); tensorflow has its own.
  const native = chosen.name === 'tensorflow' ? undefined : installNativeKernels({ threads: r.threads });
  if (native?.active === true) chosen.started.notes.push(`matmul runs natively: ${native.blas ?? 'OpenBLAS'}, ${native.threads} thread(s)`);
  current = {
    name: chosen.name,
    threads: chosen.started.threads,
    simd: chosen.started.simd,
    source: r.source,
    tried,
    notes: chosen.started.notes,
    nativeMatmul: native?.active === true,
  };
  return current;
}

/** Backends that could start here, without starting any (used only to word an error). */
async function availableBackends(except: BackendName | undefined): Promise<BackendName[]> {
  const out: BackendName[] = [];
  if (except !== 'tensorflow' && (await loadTensorflowBackend()).ok) out.push('tensorflow');
  if (tf.findBackendFactory('wasm') !== null && except !== 'wasm') out.push('wasm');
  if (tf.findBackendFactory('cpu') !== null && except !== 'cpu') out.push('cpu');
  return out;
}
