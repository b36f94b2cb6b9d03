/**
 * Starts the tfjs wasm backend with real threads in Node, at run time, without touching node_modules.
 *
 * Why this is needed (tfjs-backend-wasm 4.22, emscripten pthreads):
 * 1. The flag WASM_HAS_MULTITHREAD_SUPPORT is hard-wired to false under Node.
 * 2. The pthread worker script is handed to `new Worker()` as a `blob:` URL, which Node's
 *    worker_threads refuses (ERR_WORKER_PATH); the worker then loads the main script from a Blob too.
 * 3. The C++ side caps the pool at emscripten_num_logical_cores() / 2 (it assumes SMT), which Node
 *    answers with os.cpus().length: on 2 cores that is 1 thread.
 * So: write both scripts to real files in a cache dir; during init map the worker Blob to its file
 * (URL.createObjectURL) and report 2 × threads logical cores (os.cpus); the worker file starts with a
 * shim that maps the main-script Blob to its file. The hooks are removed once init is done.
 * Measured here (2 cores, 512³ matmul): 1 thread ≈ 32 GFLOP/s, 2 threads ≈ 62 GFLOP/s when the
 * other core is idle; on a busy machine 2 threads can be slower than 1 (CLINILORA_THREADS=1).
 */
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import workerThreads, { type WorkerOptions } from 'node:worker_threads';
import * as wasmBackend from '@tensorflow/tfjs-backend-wasm';
import { tf } from './tf.ts';
import { writeFileAtomic } from '../util/atomic.ts';

const require = createRequire(import.meta.url);
const PKG = '@tensorflow/tfjs-backend-wasm';
/** The wasm backend pre-spawns 8 pthread workers and caps its pool at 8 (max_num_threads). */
export const MAX_WASM_THREADS = 8;

export interface WasmWorkerFiles {
  dir: string;
  /** The pthread worker script (CommonJS): our shim, then the package's `wasmWorkerContents`. */
  workerPath: string;
  /** The emscripten glue the worker evaluates (`var WasmBackendModuleThreadedSimd = ...`). */
  mainPath: string;
}

interface PThreadWorker {
  unref(): void;
  terminate(): unknown;
}
/** The parts of the emscripten module object (BackendWasm.wasm) that we touch. */
interface EmscriptenModule {
  PThread?: { runningWorkers: PThreadWorker[]; unusedWorkers: PThreadWorker[] };
  locateFile?: (file: string, prefix: string) => string;
}

function wasmVersion(): string {
  return (require(`${PKG}/package.json`) as { version: string }).version;
}

/** A private cache dir: `<tmp>/clinilora-wasm-<version>`, or a fresh one if that is not ours. */
function cacheDir(version: string, tmpRoot: string): string {
  const dir = path.join(tmpRoot, `clinilora-wasm-${version}`);
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const st = statSync(dir);
    const mine = typeof process.getuid !== 'function' || st.uid === process.getuid();
    // Someone else's (or a world-writable) dir could hold a tampered worker: never run code from it.
    if (mine && (st.mode & 0o022) === 0) return dir;
  } catch {
    // fall through to a fresh private dir
  }
  return mkdtempSync(path.join(tmpRoot, `clinilora-wasm-${version}-`));
}

/** Writes `content` unless the file already holds exactly it (atomic: concurrent starts are safe). */
function ensureFile(file: string, content: string): void {
  try {
    if (readFileSync(file, 'utf8') === content) return;
  } catch {
    // missing: write it
  }
  writeFileAtomic(file, content);
}

/**
 * Writes (or reuses) the worker and main scripts under `<tmpRoot>/clinilora-wasm-<version>/`; file
 * names carry a hash of their content.
 */
export function prepareWasmWorkerFiles(tmpRoot = os.tmpdir()): WasmWorkerFiles {
  const version = wasmVersion();
  const dir = cacheDir(version, tmpRoot);
  const mainSrc = readFileSync(require.resolve(`${PKG}/wasm-out/tfjs-backend-wasm-threaded-simd.js`), 'utf8');
  const { wasmWorkerContents } = require(`${PKG}/wasm-out/tfjs-backend-wasm-threaded-simd.worker.js`) as {
    wasmWorkerContents: string;
  };
  const hash = (s: string): string => createHash('sha256').update(s).digest('hex').slice(0, 12);
  const mainPath = path.join(dir, `threaded-simd-${hash(mainSrc)}.cjs`);
  ensureFile(mainPath, mainSrc);
  // The worker asks for the main script as a Blob of type text/javascript; hand it the file instead.
  const shim =
    `"use strict";{const mainPath=${JSON.stringify(mainPath)};const create=URL.createObjectURL;` +
    `URL.createObjectURL=function(obj){return obj instanceof Blob&&obj.type==="text/javascript"?mainPath:create.call(URL,obj)};}\n`;
  // tfjs escapes newlines the same way before making its Blob: the contents hold raw "\n" inside strings.
  const worker = shim + wasmWorkerContents.replace(/^"use strict";/, '').replace(/\n/g, '\\n');
  const workerPath = path.join(dir, `threaded-simd-${hash(worker)}.worker.cjs`);
  ensureFile(workerPath, worker);
  return { dir, workerPath, mainPath };
}

export interface WasmStart {
  threads: number;
  simd: boolean;
  /** Why fewer threads than asked for, if so. */
  note?: string;
}

/**
 * `tf.setBackend('wasm')` with `threads` pthreads (1 = the plain SIMD binary, no workers).
 * Must run before the wasm backend is first initialised in this process.
 */
export async function startWasm(threads: number): Promise<WasmStart> {
  const simd = (await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT')) === true;
  let files: WasmWorkerFiles | undefined;
  let note: string | undefined;
  if (threads > 1 && !simd) note = 'threads need the SIMD build, and this runtime has no WebAssembly SIMD';
  if (threads > 1 && simd) {
    try {
      files = prepareWasmWorkerFiles();
    } catch (e) {
      note = `could not write the wasm worker scripts (${(e as Error).message}): running 1 thread`;
    }
  }
  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', files !== undefined);
  wasmBackend.setThreadsCount(files !== undefined ? threads : 1);
  const ok = files !== undefined ? await withInitHooks(files, threads, () => tf.setBackend('wasm')) : await tf.setBackend('wasm');
  if (!ok) throw new Error('tf.setBackend("wasm") failed');
  await tf.ready();
  if (files !== undefined) afterThreadedInit(files);
  return { threads: wasmBackend.getThreadsCount(), simd, ...(note !== undefined ? { note } : {}) };
}

/**
 * Runs `init` with three process-global hooks in place (for the ~0.2 s of init only): the worker
 * Blob URL becomes the worker file; os.cpus() reports 2 × threads; and new Workers start with an empty
 * execArgv (they would inherit `--import tsx` & co.: 8 pre-spawned workers each loading tsx doubled
 * init time and added ~100 MB RSS; the worker script is plain CommonJS and needs none of it).
 */
async function withInitHooks<T>(files: WasmWorkerFiles, threads: number, init: () => Promise<T>): Promise<T> {
  const createObjectURL = URL.createObjectURL;
  const cpus = os.cpus;
  const WT = workerThreads.Worker;
  (workerThreads as { Worker: unknown }).Worker = class extends WT {
    constructor(file: string | URL, options: WorkerOptions = {}) {
      super(file, { execArgv: [], ...options });
    }
  };
  const realCpus = cpus();
  // The worker Blob is the only one tfjs creates with type application/javascript.
  URL.createObjectURL = (obj: Blob): string =>
    obj instanceof Blob && obj.type === 'application/javascript' ? files.workerPath : createObjectURL.call(URL, obj);
  // Read once by the module's static init: num_cores = logical_cores / 2, and the pool is capped by it.
  os.cpus = () => Array.from({ length: 2 * threads }, (_, i) => realCpus[i % realCpus.length]!);
  try {
    return await init();
  } finally {
    URL.createObjectURL = createObjectURL;
    os.cpus = cpus;
    (workerThreads as { Worker: unknown }).Worker = WT;
  }
}

function afterThreadedInit(files: WasmWorkerFiles): void {
  const mod = (tf.findBackend('wasm') as unknown as { wasm?: EmscriptenModule } | null)?.wasm;
  if (mod === undefined) return;
  const pthread = mod.PThread;
  if (pthread !== undefined) {
    // The pool threads run forever; unreferenced, they do not keep the process from exiting.
    for (const w of pthread.runningWorkers) w.unref();
    // 8 workers were pre-spawned; the ones the pool did not take only cost memory.
    for (const w of pthread.unusedWorkers.splice(0)) void w.terminate();
  }
  // Should emscripten ever spawn another worker, it asks locateFile again: give it the real file.
  const locate = mod.locateFile;
  mod.locateFile = (file: string, prefix: string): string =>
    file.endsWith('.worker.js') ? files.workerPath : locate !== undefined ? locate(file, prefix) : prefix + file;
}
