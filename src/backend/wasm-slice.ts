/**
 * Slice and SplitV for the wasm backend, reading the input where it lies in the wasm heap.
 *
 * tfjs-backend-wasm 4.x's Slice starts with `backend.readSync(x)`, which copies the whole input out of
 * the heap (`HEAPU8.slice`) before it copies the part it wants; its SplitV calls that Slice once per
 * piece. Splitting the fused qkv or gate_up output of a layer ([1024 × 768] floats) into 3 cost 7 ms
 * here against 0.9 ms for a transpose of the same tensor, and those splits were about a tenth of a
 * nano training step (issue 7's kernel profile). These kernels do the same copies from a view of the
 * heap instead: the same bytes come out. Written by hand because the fix is inside tfjs's kernel; the
 * original kernels stay registered behind them for strings.
 */
import { tf } from './tf.ts';

/** The part of BackendWasm these kernels use (the package does not export the class's type here). */
interface WasmBackendLike {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(t: tf.TensorInfo): tf.TypedArray;
}

function sliceInto(backend: WasmBackendLike, x: tf.TensorInfo, begin: number[], size: number[]): tf.TensorInfo {
  const out = backend.makeOutput(size, x.dtype);
  const n = size.reduce((a, b) => a * b, 1);
  if (n === 0) return out;
  const src = backend.typedArrayFromHeap(x);
  const dst = backend.typedArrayFromHeap(out);
  const rank = x.shape.length;
  const strides = new Array<number>(rank);
  let s = 1;
  for (let d = rank - 1; d >= 0; d--) {
    strides[d] = s;
    s *= x.shape[d]!;
  }
  // The innermost run that is contiguous in x: trailing dims taken whole, plus the first one that is not.
  let inner = rank - 1;
  while (inner > 0 && size[inner] === x.shape[inner]) inner--;
  const run = size.slice(inner).reduce((a, b) => a * b, 1);
  const outer = n / run;
  const idx = new Array<number>(inner).fill(0);
  for (let o = 0; o < outer; o++) {
    let off = begin[inner]! * strides[inner]!;
    for (let d = 0; d < inner; d++) off += (begin[d]! + idx[d]!) * strides[d]!;
    dst.set(src.subarray(off, off + run), o * run);
    for (let d = inner - 1; d >= 0; d--) {
      if (++idx[d]! < size[d]!) break;
      idx[d] = 0;
    }
  }
  return out;
}

const state = { installed: false };

/** True once installWasmSlice has replaced the wasm kernels (initBackend does it when wasm starts). */
export function wasmSliceInstalled(): boolean {
  return state.installed;
}

/** Registers the in-place Slice and SplitV on the wasm backend (idempotent). */
export function installWasmSlice(): void {
  if (state.installed) return;
  const slice = tf.getKernel(tf.Slice, 'wasm');
  const splitV = tf.getKernel(tf.SplitV, 'wasm');
  if (slice === undefined || splitV === undefined) return;
  tf.unregisterKernel(tf.Slice, 'wasm');
  tf.registerKernel({
    ...slice,
    kernelFunc: (args) => {
      const x = args.inputs.x as tf.TensorInfo;
      if (x.dtype === 'string') return slice.kernelFunc(args);
      const { begin, size } = args.attrs as unknown as { begin: number | number[]; size: number | number[] };
      const [b, s] = tf.slice_util.parseSliceParams(x as tf.Tensor, begin, size);
      return sliceInto(args.backend as unknown as WasmBackendLike, x, b, s);
    },
  });
  tf.unregisterKernel(tf.SplitV, 'wasm');
  tf.registerKernel({
    ...splitV,
    kernelFunc: (args) => {
      const x = args.inputs.x as tf.TensorInfo;
      if (x.dtype === 'string') return splitV.kernelFunc(args);
      const { numOrSizeSplits, axis } = args.attrs as unknown as { numOrSizeSplits: number | number[]; axis: number };
      const ax = tf.util.parseAxisParam(axis, x.shape)[0]!;
      const sizes = tf.backend_util.prepareSplitSize(x as tf.Tensor, numOrSizeSplits, ax);
      const begin = new Array<number>(x.shape.length).fill(0);
      return sizes.map((n) => {
        const size = [...x.shape];
        size[ax] = n;
        const out = sliceInto(args.backend as unknown as WasmBackendLike, x, begin, size);
        begin[ax]! += n;
        return out;
      });
    },
  });
  state.installed = true;
}
