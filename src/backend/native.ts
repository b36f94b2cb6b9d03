/**
 * Native matmul for the wasm and cpu backends: replaces tfjs's `BatchMatMul` kernel with one that calls
 * OpenBLAS sgemm through the addon (native-addon.ts) for large enough products, reading the inputs in
 * place (the wasm heap, or the cpu backend's arrays) and writing into an output the backend allocated.
 * Small products, unusual broadcasts, non-float32 inputs and a disabled switch go to the original kernel.
 * Gradients need nothing: tfjs's BatchMatMul gradient is itself BatchMatMuls (with transpose flags,
 * which sgemm handles at full speed, unlike wasm).
 *
 * On by default whenever the addon loads; CLINILORA_NATIVE=0 keeps tfjs's kernels.
 */
import os from 'node:os';
import { tf } from './tf.ts';
import { loadNativeAddon, nativeWanted, type NativeAddon } from './native-addon.ts';

/**
 * Products below this many multiply-adds stay on the backend's kernel. 0: measured here, the addon was
 * as fast as or faster than wasm at every size down to 4×4×4 (a call costs ~3 µs; wasm's ~10 µs).
 */
export const DEFAULT_MIN_MACS = 0;

export interface NativeStatus {
  /** The addon loaded. */
  loaded: boolean;
  /** Matmuls currently go native (loaded, kernels installed, not switched off). */
  active: boolean;
  /** Why not, when not. */
  reason?: string;
  path: string;
  /** Backends whose BatchMatMul is overridden. */
  backends: string[];
  threads?: number;
  /** e.g. "OpenBLAS 0.3.21 ... SkylakeX". */
  blas?: string;
  /** Widest instructions the hand-written kernels use here: avx512-vbmi, avx512, avx2 or scalar (CLINILORA_NATIVE_ISA=avx512|avx2|scalar caps it). */
  isa?: string;
  minMacs: number;
  /** Calls served natively / handed to the original kernel since start (or the last reset). */
  calls: { native: number; fallback: number };
}

interface Plan {
  batchA: number;
  batchB: number;
  batch: number;
  m: number;
  n: number;
  k: number;
  outShape: number[];
}

const state = {
  enabled: true,
  minMacs: DEFAULT_MIN_MACS,
  threads: 0,
  installed: new Map<string, tf.KernelConfig>(), // backend → original config
  calls: { native: 0, fallback: 0 },
};

const prod = (xs: readonly number[]): number => xs.reduce((p, x) => p * x, 1);

/**
 * The product tfjs would compute, or undefined to leave it to the original kernel (which also reports
 * shape errors). tfjs maps batch index b to b % batchA / b % batchB of the flattened outer dims: that
 * equals true broadcasting only when the batches match or one side has a single matrix, so the
 * native path takes just those cases and leaves any other broadcast to tfjs, result and all.
 */
export function planBatchMatMul(aShape: readonly number[], bShape: readonly number[], transposeA: boolean, transposeB: boolean): Plan | undefined {
  const ra = aShape.length;
  const rb = bShape.length;
  if (ra < 2 || rb < 2) return undefined;
  const m = transposeA ? aShape[ra - 1]! : aShape[ra - 2]!;
  const kA = transposeA ? aShape[ra - 2]! : aShape[ra - 1]!;
  const kB = transposeB ? bShape[rb - 1]! : bShape[rb - 2]!;
  const n = transposeB ? bShape[rb - 2]! : bShape[rb - 1]!;
  if (kA !== kB) return undefined;
  const outerA = aShape.slice(0, -2);
  const outerB = bShape.slice(0, -2);
  let outer: number[];
  try {
    outer = tf.broadcast_util.assertAndGetBroadcastShape(outerA, outerB);
  } catch {
    return undefined;
  }
  const batchA = prod(outerA);
  const batchB = prod(outerB);
  const batch = prod(outer);
  if (!(batchA === batchB || batchA === 1 || batchB === 1) || batch !== Math.max(batchA, batchB)) return undefined;
  return { batchA, batchB, batch, m, n, k: kA, outShape: [...outer, m, n] };
}

interface KernelArgs {
  inputs: { a: tf.TensorInfo; b: tf.TensorInfo };
  attrs: { transposeA: boolean; transposeB: boolean };
  backend: unknown;
}

/** The parts of tfjs-backend-wasm's BackendWasm we use. */
export interface WasmBackend {
  wasm: { HEAPU8: Uint8Array };
  dataIdMap: { get(id: tf.DataId): { memoryOffset: number } | undefined };
  makeOutput(shape: number[], dtype: 'float32'): tf.TensorInfo;
}
/** The parts of tfjs-backend-cpu's MathBackendCPU we use. */
export interface CpuBackend {
  data: { get(id: tf.DataId): { values?: unknown } | undefined };
  makeTensorInfo(shape: number[], dtype: 'float32', values: Float32Array): tf.TensorInfo;
}

/** The plan when this call should go native; counts the call either way. */
function nativePlan(args: KernelArgs): Plan | undefined {
  const { a, b } = args.inputs;
  const plan =
    state.enabled && a.dtype === 'float32' && b.dtype === 'float32'
      ? planBatchMatMul(a.shape, b.shape, args.attrs.transposeA === true, args.attrs.transposeB === true)
      : undefined;
  if (plan === undefined || plan.m === 0 || plan.n === 0 || plan.k === 0 || plan.batch * plan.m * plan.n * plan.k < state.minMacs) {
    state.calls.fallback++;
    return undefined;
  }
  state.calls.native++;
  return plan;
}

function runGemm(addon: NativeAddon, p: Plan, a: Float32Array, b: Float32Array, c: Float32Array, args: KernelArgs): void {
  addon.gemm(a, b, c, p.batchA, p.batchB, p.batch, p.m, p.n, p.k, args.attrs.transposeA === true, args.attrs.transposeB === true);
}

function wasmKernel(addon: NativeAddon, original: tf.KernelFunc): tf.KernelFunc {
  return ((args: KernelArgs) => {
    const plan = nativePlan(args);
    if (plan === undefined) return original(args as unknown as Parameters<tf.KernelFunc>[0]);
    const be = args.backend as WasmBackend;
    const out = be.makeOutput(plan.outShape, 'float32');
    // Read the heap after makeOutput: its malloc may have grown (and so replaced) the buffer.
    const heap = be.wasm.HEAPU8.buffer;
    const view = (t: tf.TensorInfo, len: number): Float32Array => new Float32Array(heap, be.dataIdMap.get(t.dataId)!.memoryOffset, len);
    const { a, b } = args.inputs;
    runGemm(addon, plan, view(a, plan.batchA * plan.m * plan.k), view(b, plan.batchB * plan.k * plan.n), view(out, plan.batch * plan.m * plan.n), args);
    return out;
  }) as unknown as tf.KernelFunc;
}

function cpuKernel(addon: NativeAddon, original: tf.KernelFunc): tf.KernelFunc {
  return ((args: KernelArgs) => {
    const plan = nativePlan(args);
    const be = args.backend as CpuBackend;
    const { a, b } = args.inputs;
    const av = plan !== undefined ? be.data.get(a.dataId)?.values : undefined;
    const bv = plan !== undefined ? be.data.get(b.dataId)?.values : undefined;
    if (plan === undefined || !(av instanceof Float32Array) || !(bv instanceof Float32Array)) {
      if (plan !== undefined) {
        state.calls.native--;
        state.calls.fallback++;
      }
      return original(args as unknown as Parameters<tf.KernelFunc>[0]);
    }
    const c = new Float32Array(plan.batch * plan.m * plan.n);
    runGemm(addon, plan, av, bv, c, args);
    return be.makeTensorInfo(plan.outShape, 'float32', c);
  }) as unknown as tf.KernelFunc;
}

/** Threads for the addon's pool: CLINILORA_THREADS, else all cores (at most 8), like the wasm pool. */
function defaultThreads(): number {
  const env = Number(process.env.CLINILORA_THREADS);
  return Number.isInteger(env) && env >= 1 && env <= 64 ? env : Math.min(os.availableParallelism(), 8);
}

/**
 * Installs the native BatchMatMul for every registered backend among wasm and cpu (idempotent; call
 * after the backend is initialised so its own kernel setup has run). Returns the status.
 */
export function installNativeKernels(opts: { threads?: number } = {}): NativeStatus {
  const load = loadNativeAddon();
  if (!load.ok) return nativeStatus();
  const threads = opts.threads ?? defaultThreads();
  if (threads !== state.threads) {
    load.addon.setThreads(threads);
    state.threads = threads;
  }
  for (const backend of ['wasm', 'cpu']) {
    if (state.installed.has(backend)) continue;
    const original = tf.getKernel(tf.BatchMatMul, backend);
    if (original === undefined) continue;
    const kernelFunc = backend === 'wasm' ? wasmKernel(load.addon, original.kernelFunc) : cpuKernel(load.addon, original.kernelFunc);
    tf.unregisterKernel(tf.BatchMatMul, backend);
    // Keep setupFunc/disposeFunc: a backend re-initialised later still sets up the original it falls back to.
    tf.registerKernel({ ...original, kernelFunc });
    state.installed.set(backend, original);
  }
  return nativeStatus();
}

/** Puts tfjs's own kernels back (tests, benchmarks). */
export function uninstallNativeKernels(): void {
  for (const [backend, original] of state.installed) {
    tf.unregisterKernel(tf.BatchMatMul, backend);
    tf.registerKernel(original);
  }
  state.installed.clear();
}

/** Switches the installed kernels between native and the originals at run time (the reference path in tests and benchmarks). */
export function setNativeEnabled(on: boolean): void {
  state.enabled = on;
}

/** Whether the installed kernels are switched on (setNativeEnabled). */
export function nativeEnabled(): boolean {
  return state.enabled;
}

/** Products smaller than `macs` multiply-adds use the backend's kernel. */
export function setNativeMinMacs(macs: number): void {
  if (!(Number.isFinite(macs) && macs >= 0)) throw new RangeError(`setNativeMinMacs: expected a number >= 0, got ${macs}`);
  state.minMacs = macs;
}

export function resetNativeCounters(): void {
  state.calls = { native: 0, fallback: 0 };
}

/** The addon itself (for kernels that call it directly), or undefined when it is not loaded or switched off. */
export function nativeAddon(): NativeAddon | undefined {
  const load = loadNativeAddon();
  return load.ok && state.enabled ? load.addon : undefined;
}

/** True when matmuls on the current backend run natively (then transpose flags cost nothing extra). */
export function nativeMatmulActive(): boolean {
  return state.enabled && state.installed.has(tf.getBackend());
}

export function nativeStatus(): NativeStatus {
  const load = loadNativeAddon();
  const base = { path: load.path, minMacs: state.minMacs, calls: { ...state.calls }, backends: [...state.installed.keys()] };
  if (!load.ok) return { loaded: false, active: false, reason: load.reason, ...base };
  const info = load.addon.info();
  const active = state.enabled && state.installed.size > 0;
  return {
    loaded: true,
    active,
    ...(active ? {} : { reason: !state.enabled ? 'switched off (setNativeEnabled(false))' : nativeWanted() ? 'kernels not installed' : 'disabled by CLINILORA_NATIVE=0' }),
    ...base,
    threads: info.threads,
    blas: `${info.blasConfig} (core ${info.blasCore})`,
    isa: info.isa,
  };
}
