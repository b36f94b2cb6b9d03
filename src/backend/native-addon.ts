/**
 * Loads the optional native addon (native/ → native/build/Release/clinilora_native.node, built by
 * `node native/build.mjs` at install). Never throws: a missing or broken addon is a reason string, and
 * the caller keeps the wasm/cpu kernels.
 *
 * Env: CLINILORA_NATIVE=0 turns it off; CLINILORA_NATIVE_ADDON=<file> loads another build (tests use a
 * missing path to exercise the fallback).
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The C++ functions (native/src/addon.cc). Arrays are views; nothing is copied. */
export interface NativeAddon {
  /**
   * c[b] = op(a[b % batchA]) · op(b[b % batchB]) for b < batch; row-major float32, op = optional
   * transpose. a: batchA·m·k values, b: batchB·k·n, c: batch·m·n.
   */
  gemm(a: Float32Array, b: Float32Array, c: Float32Array, batchA: number, batchB: number, batch: number, m: number, n: number, k: number, transposeA: boolean, transposeB: boolean): void;
  /** y [m, out] = x [m, in] · dequant(W)ᵀ, W = int8 codes [out, in] with a row absmax [out] (src/kernels/int8.ts rounding). */
  gemmInt8NT(x: Float32Array, codes: Int8Array, rowAbsmax: Float32Array, y: Float32Array, m: number, out: number, inF: number): void;
  /** dx [m, in] = dy [m, out] · dequant(W). */
  gemmInt8NN(dy: Float32Array, codes: Int8Array, rowAbsmax: Float32Array, dx: Float32Array, m: number, out: number, inF: number): void;
  /**
   * y [m, out] = x [m, in] · dequant(W)ᵀ, W = NF4 (src/kernels/nf4.ts): data = packed codes, codes = the
   * 16 NF4 values, absmax = per-block absmax, or absmax2 when qAbsmax/code2/offset carry the
   * double-quantized form (else null, null, 0).
   */
  gemmNF4NT(x: Float32Array, data: Uint8Array, codes: Float32Array, absmax: Float32Array, qAbsmax: Uint8Array | null, code2: Float32Array | null, offset: number, blockSize: number, blockSize2: number, y: Float32Array, m: number, out: number, inF: number): void;
  /** dx [m, in] = dy [m, out] · dequant(W), W NF4 as in gemmNF4NT. */
  gemmNF4NN(dy: Float32Array, data: Uint8Array, codes: Float32Array, absmax: Float32Array, qAbsmax: Uint8Array | null, code2: Float32Array | null, offset: number, blockSize: number, blockSize2: number, dx: Float32Array, m: number, out: number, inF: number): void;
  /**
   * Fused lm_head + cross-entropy over rows of h [n, D] and wt [D, V]: nll[i] = lse_i − logit[i, t_i];
   * with dh, also dh = ((softmax − onehot(t)) ⊙ weights · scale) · wtᵀ (the input gradient for dy = 1).
   */
  linearCrossEntropy(h: Float32Array, wt: Float32Array, targets: Int32Array, weights: Float32Array, scale: number, nll: Float32Array, dh: Float32Array | null, n: number, D: number, V: number): void;
  /** Size of the addon's own thread pool (OpenBLAS itself runs single-threaded inside each piece). */
  setThreads(n: number): void;
  /** isa: the widest instructions the hand-written kernels use here (avx512-vbmi, avx512, avx2, scalar). */
  info(): { threads: number; blasThreads: number; blasConfig: string; blasCore: string; isa: string };
}

export type AddonLoad = { ok: true; addon: NativeAddon; path: string } | { ok: false; reason: string; path: string };

const here = path.dirname(fileURLToPath(import.meta.url));
/** Where build.mjs puts the addon. */
export const DEFAULT_ADDON_PATH = path.resolve(here, '..', '..', 'native', 'build', 'Release', 'clinilora_native.node');

let cached: AddonLoad | undefined;

/** The values CLINILORA_NATIVE_ISA may take: the widest instructions the hand-written kernels may use. */
export const NATIVE_ISA_CAPS = ['avx512', 'avx2', 'scalar'] as const;

/** True unless CLINILORA_NATIVE is 0/false/off. */
export function nativeWanted(): boolean {
  const v = (process.env.CLINILORA_NATIVE ?? '').trim().toLowerCase();
  return !(v === '0' || v === 'false' || v === 'off' || v === 'no');
}

/** Loads the addon once per process (a failed load is remembered too). */
export function loadNativeAddon(): AddonLoad {
  if (cached !== undefined) return cached;
  const file = process.env.CLINILORA_NATIVE_ADDON !== undefined && process.env.CLINILORA_NATIVE_ADDON !== '' ? path.resolve(process.env.CLINILORA_NATIVE_ADDON) : DEFAULT_ADDON_PATH;
  if (!nativeWanted()) return (cached = { ok: false, reason: 'disabled by CLINILORA_NATIVE=0', path: file });
  const isa = process.env.CLINILORA_NATIVE_ISA;
  if (isa !== undefined && !(NATIVE_ISA_CAPS as readonly string[]).includes(isa)) {
    return (cached = { ok: false, reason: `CLINILORA_NATIVE_ISA=${JSON.stringify(isa)}: expected one of ${NATIVE_ISA_CAPS.join(', ')} (or unset for the widest the CPU has)`, path: file });
  }
  if (!existsSync(file)) {
    return (cached = { ok: false, reason: `not built (${displayPath(file)} missing; run \`node native/build.mjs\`)`, path: file });
  }
  // OpenBLAS starts its own thread pool when the library loads; we run it single-threaded inside our
  // pool (its idle threads spin-wait and would take the core the wasm pool needs), so it gets none.
  const prev = process.env.OPENBLAS_NUM_THREADS;
  process.env.OPENBLAS_NUM_THREADS = '1';
  try {
    const addon = createRequire(import.meta.url)(file) as Partial<NativeAddon>;
    const missing = (['gemm', 'gemmInt8NT', 'gemmInt8NN', 'gemmNF4NT', 'gemmNF4NN', 'linearCrossEntropy', 'setThreads', 'info'] as const).filter((f) => typeof addon[f] !== 'function');
    if (missing.length > 0) return (cached = { ok: false, reason: `stale build: no ${missing.join(', ')} (rebuild: node native/build.mjs)`, path: file });
    return (cached = { ok: true, addon: addon as NativeAddon, path: file });
  } catch (e) {
    return (cached = { ok: false, reason: `does not load: ${String((e as Error)?.message ?? e).split('\n')[0]}`, path: file });
  } finally {
    if (prev === undefined) delete process.env.OPENBLAS_NUM_THREADS;
    else process.env.OPENBLAS_NUM_THREADS = prev;
  }
}

/** A path relative to the working directory when inside it, else absolute. */
function displayPath(file: string): string {
  const rel = path.relative(process.cwd(), file);
  return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : file;
}
