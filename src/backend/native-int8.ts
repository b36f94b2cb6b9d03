/**
 * Weight-only int8 matmuls through the native addon, reading the packed weight straight from its JS
 * typed arrays (codes [out, in] int8 + rowAbsmax [out], src/kernels/int8.ts): no float copy of W is
 * made in JS nor uploaded to the backend. The addon dequantizes 64-row blocks into a scratch and runs
 * sgemm on them, with the same float32 rounding as `dequantizeInt8` (w = f32(q · absmax) · f32(1/127)).
 *   int8MatMulT(x, q): y = x · dequant(W)ᵀ   x [N, in]  → [N, out]   (forward)
 *   int8MatMul(dy, q): dx = dy · dequant(W)  dy [N, out] → [N, in]   (input gradient)
 * Both return undefined when the native path is not active on the current backend (the caller keeps
 * its own path). No gradient is registered: callers wrap them in a custom gradient, as a frozen
 * quantized linear does (dx of the forward is int8MatMul).
 * Measured here (2 cores, idle): lm_head [261×256]·[32064×256]ᵀ 26 ms (166 GFLOP/s) against 17 ms for
 * sgemm on a cached float W (and ≈ 21 ms just to dequantize W in JS); at 1–16 rows it matches or
 * beats float (it reads 1 byte a weight instead of 4): 1 row 0.9 vs 1.8 ms.
 */
import { tf } from './tf.ts';
import { loadNativeAddon, type NativeAddon } from './native-addon.ts';
import { nativeMatmulActive, type CpuBackend, type WasmBackend } from './native.ts';

/** The packed weight (structurally src/kernels/int8.ts's Int8Weight). */
export interface Int8Packed {
  /** [out, in]. */
  shape: [number, number];
  data: Int8Array;
  rowAbsmax: Float32Array;
}

const KERNEL_T = 'CliniloraInt8MatMulT';
const KERNEL_N = 'CliniloraInt8MatMul';

interface Attrs {
  q: Int8Packed;
}
interface Args {
  inputs: { x: tf.TensorInfo };
  attrs: Attrs;
  backend: unknown;
}

type Run = (addon: NativeAddon, x: Float32Array, q: Int8Packed, y: Float32Array, rows: number) => void;
const runT: Run = (addon, x, q, y, rows) => addon.gemmInt8NT(x, q.data, q.rowAbsmax, y, rows, q.shape[0], q.shape[1]);
const runN: Run = (addon, dy, q, dx, rows) => addon.gemmInt8NN(dy, q.data, q.rowAbsmax, dx, rows, q.shape[0], q.shape[1]);

function kernel(addon: NativeAddon, backendName: string, run: Run, outCols: (q: Int8Packed) => number): tf.KernelFunc {
  return ((args: Args) => {
    const { x } = args.inputs;
    const { q } = args.attrs;
    const rows = x.shape[0]!;
    const shape = [rows, outCols(q)];
    if (backendName === 'wasm') {
      const be = args.backend as WasmBackend;
      const out = be.makeOutput(shape, 'float32');
      const heap = be.wasm.HEAPU8.buffer; // after makeOutput: a grown heap is a new buffer
      const xv = new Float32Array(heap, be.dataIdMap.get(x.dataId)!.memoryOffset, rows * x.shape[1]!);
      run(addon, xv, q, new Float32Array(heap, be.dataIdMap.get(out.dataId)!.memoryOffset, rows * shape[1]!), rows);
      return out;
    }
    const be = args.backend as CpuBackend;
    const xv = be.data.get(x.dataId)?.values;
    if (!(xv instanceof Float32Array)) throw new Error(`${KERNEL_T}: input values are not float32`);
    const y = new Float32Array(rows * shape[1]!);
    run(addon, xv, q, y, rows);
    return be.makeTensorInfo(shape, 'float32', y);
  }) as unknown as tf.KernelFunc;
}

let registered = false;

function ensureKernels(addon: NativeAddon): void {
  if (registered) return;
  for (const backendName of ['wasm', 'cpu']) {
    tf.registerKernel({ kernelName: KERNEL_T, backendName, kernelFunc: kernel(addon, backendName, runT, (q) => q.shape[0]) });
    tf.registerKernel({ kernelName: KERNEL_N, backendName, kernelFunc: kernel(addon, backendName, runN, (q) => q.shape[1]) });
  }
  registered = true;
}

function check(x: tf.Tensor2D, cols: number, q: Int8Packed, op: string): void {
  const [out, inF] = q.shape;
  if (q.data.length !== out * inF || q.rowAbsmax.length !== out) throw new RangeError(`${op}: weight arrays do not match its shape [${out}, ${inF}]`);
  if (x.rank !== 2 || x.shape[1] !== cols || x.dtype !== 'float32') throw new RangeError(`${op}: input is ${x.dtype} [${x.shape}], expected float32 [N, ${cols}]`);
}

function runOp(name: string, x: tf.Tensor2D, q: Int8Packed): tf.Tensor2D | undefined {
  if (!nativeMatmulActive()) return undefined;
  const load = loadNativeAddon();
  if (!load.ok) return undefined;
  ensureKernels(load.addon);
  return tf.engine().runKernel(name, { x }, { q } as unknown as tf.NamedAttrMap) as tf.Tensor2D;
}

/** x [N, in] · dequant(W)ᵀ → [N, out], or undefined when the native path is off here. */
export function int8MatMulT(x: tf.Tensor2D, q: Int8Packed): tf.Tensor2D | undefined {
  check(x, q.shape[1], q, 'int8MatMulT');
  return runOp(KERNEL_T, x, q);
}

/** dy [N, out] · dequant(W) → [N, in], or undefined when the native path is off here. */
export function int8MatMul(dy: tf.Tensor2D, q: Int8Packed): tf.Tensor2D | undefined {
  check(dy, q.shape[0], q, 'int8MatMul');
  return runOp(KERNEL_N, dy, q);
}
