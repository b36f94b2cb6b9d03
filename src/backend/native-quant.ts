/**
 * Weight-only quantized matmuls through the native addon, reading the packed weight straight from its
 * JS typed arrays: no float copy of W is made in JS nor uploaded to the backend. The addon dequantizes
 * 64-row blocks into a per-thread scratch and runs sgemm on them, with the float32 rounding of the JS
 * dequantizers (so the product matches "dequantize, then matMul" up to summation order).
 *   int8 (codes [out, in] + rowAbsmax [out], src/kernels/int8.ts): w = f32(q · absmax) · f32(1/127)
 *   NF4  (4-bit codes + per-block absmax, plain or double-quantized, src/kernels/nf4.ts):
 *        w = f32(code[nibble] · absmax[block]); with at most 4 rows of x the forward decodes the codes
 *        straight into AVX2 registers (decoding, where the weight read is all the work).
 * Each kind has two ops:
 *   …MatMulT(x, q): y = x · dequant(W)ᵀ   x [N, in]  → [N, out]   (forward)
 *   …MatMul(dy, q): dx = dy · dequant(W)  dy [N, out] → [N, in]   (input gradient)
 * All return undefined when the native path is not active on the current backend (the caller keeps its
 * own path). No gradient is registered: callers wrap them in a custom gradient, as a frozen quantized
 * linear does (dx of the forward is …MatMul).
 * Measured here (2 cores, idle), int8: lm_head [261×256]·[32064×256]ᵀ 26 ms (166 GFLOP/s) against 17 ms
 * for sgemm on a cached float W (and ≈ 21 ms just to dequantize W in JS); at 1–16 rows it matches or
 * beats float (it reads 1 byte a weight instead of 4): 1 row 0.9 vs 1.8 ms.
 */
import { tf } from './tf.ts';
import { loadNativeAddon, type NativeAddon } from './native-addon.ts';
import { nativeMatmulActive, type CpuBackend, type WasmBackend } from './native.ts';
import type { Int8Weight } from '../kernels/int8.ts';
import { NF4_CODES, isNested, type NF4Weight } from '../kernels/nf4.ts';

/** The packed int8 weight (src/kernels/int8.ts). */
export type Int8Packed = Pick<Int8Weight, 'shape' | 'data' | 'rowAbsmax'>;

type Packed = Int8Packed | NF4Weight;
type Run<Q extends Packed> = (addon: NativeAddon, x: Float32Array, q: Q, y: Float32Array, rows: number) => void;

interface Op<Q extends Packed> {
  kernel: string;
  run: Run<Q>;
  /** Columns of the input and of the output. */
  inCols: (q: Q) => number;
  outCols: (q: Q) => number;
}

/** The addon's NF4 argument list after x: data, codes, absmax, qAbsmax, code2, offset, blockSize, blockSize2. */
function nf4Args(q: NF4Weight): [Uint8Array, Float32Array, Float32Array, Uint8Array | null, Float32Array | null, number, number, number] {
  const a = q.absmax;
  return isNested(a)
    ? [q.data, NF4_CODES, a.absmax2, a.qAbsmax, a.code2, a.offset, q.blockSize, a.blockSize2]
    : [q.data, NF4_CODES, a, null, null, 0, q.blockSize, 1];
}

const OPS = {
  int8T: {
    kernel: 'CliniloraInt8MatMulT',
    run: (addon, x, q, y, rows) => addon.gemmInt8NT(x, q.data, q.rowAbsmax, y, rows, q.shape[0], q.shape[1]),
    inCols: (q) => q.shape[1],
    outCols: (q) => q.shape[0],
  } satisfies Op<Int8Packed>,
  int8N: {
    kernel: 'CliniloraInt8MatMul',
    run: (addon, dy, q, dx, rows) => addon.gemmInt8NN(dy, q.data, q.rowAbsmax, dx, rows, q.shape[0], q.shape[1]),
    inCols: (q) => q.shape[0],
    outCols: (q) => q.shape[1],
  } satisfies Op<Int8Packed>,
  nf4T: {
    kernel: 'CliniloraNF4MatMulT',
    run: (addon, x, q, y, rows) => addon.gemmNF4NT(x, ...nf4Args(q), y, rows, q.shape[0], q.shape[1]),
    inCols: (q) => q.shape[1],
    outCols: (q) => q.shape[0],
  } satisfies Op<NF4Weight>,
  nf4N: {
    kernel: 'CliniloraNF4MatMul',
    run: (addon, dy, q, dx, rows) => addon.gemmNF4NN(dy, ...nf4Args(q), dx, rows, q.shape[0], q.shape[1]),
    inCols: (q) => q.shape[0],
    outCols: (q) => q.shape[1],
  } satisfies Op<NF4Weight>,
};

interface Args {
  inputs: { x: tf.TensorInfo };
  attrs: { q: Packed };
  backend: unknown;
}

function kernel<Q extends Packed>(addon: NativeAddon, backendName: string, op: Op<Q>): tf.KernelFunc {
  return ((args: Args) => {
    const { x } = args.inputs;
    const q = args.attrs.q as Q;
    const rows = x.shape[0]!;
    const shape = [rows, op.outCols(q)];
    if (backendName === 'wasm') {
      const be = args.backend as WasmBackend;
      const out = be.makeOutput(shape, 'float32');
      const heap = be.wasm.HEAPU8.buffer; // after makeOutput: a grown heap is a new buffer
      const xv = new Float32Array(heap, be.dataIdMap.get(x.dataId)!.memoryOffset, rows * x.shape[1]!);
      op.run(addon, xv, q, new Float32Array(heap, be.dataIdMap.get(out.dataId)!.memoryOffset, rows * shape[1]!), rows);
      return out;
    }
    const be = args.backend as CpuBackend;
    const xv = be.data.get(x.dataId)?.values;
    if (!(xv instanceof Float32Array)) throw new Error(`${op.kernel}: input values are not float32`);
    const y = new Float32Array(rows * shape[1]!);
    op.run(addon, xv, q, y, rows);
    return be.makeTensorInfo(shape, 'float32', y);
  }) as unknown as tf.KernelFunc;
}

let registered = false;

function ensureKernels(addon: NativeAddon): void {
  if (registered) return;
  for (const backendName of ['wasm', 'cpu']) {
    for (const op of Object.values(OPS)) {
      tf.registerKernel({ kernelName: op.kernel, backendName, kernelFunc: kernel(addon, backendName, op as Op<Packed>) });
    }
  }
  registered = true;
}

function runOp<Q extends Packed>(op: Op<Q>, name: string, x: tf.Tensor2D, q: Q): tf.Tensor2D | undefined {
  const cols = op.inCols(q);
  if (x.rank !== 2 || x.shape[1] !== cols || x.dtype !== 'float32') throw new RangeError(`${name}: input is ${x.dtype} [${x.shape}], expected float32 [N, ${cols}]`);
  if (!nativeMatmulActive()) return undefined;
  const load = loadNativeAddon();
  if (!load.ok) return undefined;
  ensureKernels(load.addon);
  return tf.engine().runKernel(op.kernel, { x }, { q } as unknown as tf.NamedAttrMap) as tf.Tensor2D;
}

function checkInt8(q: Int8Packed, op: string): void {
  const [out, inF] = q.shape;
  if (q.data.length !== out * inF || q.rowAbsmax.length !== out) throw new RangeError(`${op}: weight arrays do not match its shape [${out}, ${inF}]`);
}

/** x [N, in] · dequant(W)ᵀ → [N, out] for an int8 W, or undefined when the native path is off here. */
export function int8MatMulT(x: tf.Tensor2D, q: Int8Packed): tf.Tensor2D | undefined {
  checkInt8(q, 'int8MatMulT');
  return runOp(OPS.int8T, 'int8MatMulT', x, q);
}

/** dy [N, out] · dequant(W) → [N, in] for an int8 W, or undefined when the native path is off here. */
export function int8MatMul(dy: tf.Tensor2D, q: Int8Packed): tf.Tensor2D | undefined {
  checkInt8(q, 'int8MatMul');
  return runOp(OPS.int8N, 'int8MatMul', dy, q);
}

/** x [N, in] · dequant(W)ᵀ → [N, out] for an NF4 W, or undefined when the native path is off here. */
export function nf4MatMulT(x: tf.Tensor2D, q: NF4Weight): tf.Tensor2D | undefined {
  return runOp(OPS.nf4T, 'nf4MatMulT', x, q);
}

/** dy [N, out] · dequant(W) → [N, in] for an NF4 W, or undefined when the native path is off here. */
export function nf4MatMul(dy: tf.Tensor2D, q: NF4Weight): tf.Tensor2D | undefined {
  return runOp(OPS.nf4N, 'nf4MatMul', dy, q);
}
