/**
 * Fused lm_head + cross-entropy through the native addon (native/src/addon.cc `linearCrossEntropy`),
 * for a float head held as Wᵀ [D, V] (FloatLinear.wt), read in place from the backend's memory.
 *
 * One kernel call gives the per-row nll [n] and, when a gradient is wanted, dh [n, D] for dy = 1:
 * the forward already has each chunk's logits, so the input gradient is made there (Liger's scheme)
 * and the backward only scales it by dy. Logits exist one chunk a thread (128 rows), never [n, V],
 * and nothing is recomputed: two sgemms and one pass of exp over the logits in all, where the tfjs
 * path needs three products and about ten elementwise passes.
 * Returns undefined when the native path is off on the current backend (the caller keeps its own).
 */
import { tf } from './tf.ts';
import { loadNativeAddon, type NativeAddon } from './native-addon.ts';
import { nativeMatmulActive, type CpuBackend, type WasmBackend } from './native.ts';

const KERNEL = 'CliniloraLinearCrossEntropy';

interface Attrs {
  targets: Int32Array;
  weights: Float32Array;
  scale: number;
  grad: boolean;
}
interface Args {
  inputs: { h: tf.TensorInfo; wt: tf.TensorInfo };
  attrs: Attrs;
  backend: unknown;
}

function kernel(addon: NativeAddon, backendName: string): tf.KernelFunc {
  return ((args: Args) => {
    const { h, wt } = args.inputs;
    const { targets, weights, scale, grad } = args.attrs;
    const [n, D] = h.shape as [number, number];
    const V = wt.shape[1]!;
    if (backendName === 'wasm') {
      const be = args.backend as WasmBackend;
      const nll = be.makeOutput([n], 'float32');
      const dh = grad ? be.makeOutput([n, D], 'float32') : undefined;
      const heap = be.wasm.HEAPU8.buffer; // after makeOutput: a grown heap is a new buffer
      const view = (t: tf.TensorInfo, len: number) => new Float32Array(heap, be.dataIdMap.get(t.dataId)!.memoryOffset, len);
      addon.linearCrossEntropy(view(h, n * D), view(wt, D * V), targets, weights, scale, view(nll, n), dh !== undefined ? view(dh, n * D) : null, n, D, V);
      return dh !== undefined ? [nll, dh] : [nll];
    }
    const be = args.backend as CpuBackend;
    const hv = be.data.get(h.dataId)?.values;
    const wv = be.data.get(wt.dataId)?.values;
    if (!(hv instanceof Float32Array) || !(wv instanceof Float32Array)) throw new Error(`${KERNEL}: input values are not float32`);
    const nll = new Float32Array(n);
    const dh = grad ? new Float32Array(n * D) : null;
    addon.linearCrossEntropy(hv, wv, targets, weights, scale, nll, dh, n, D, V);
    const out = [be.makeTensorInfo([n], 'float32', nll)];
    if (dh !== null) out.push(be.makeTensorInfo([n, D], 'float32', dh));
    return out;
  }) as unknown as tf.KernelFunc;
}

let registered = false;

/**
 * nll [n] of h [n, D] through wt [D, V] against targets, and with `grad` also
 * dh = ((softmax − onehot) ⊙ weights · scale) · wtᵀ; undefined when the native path is off here.
 */
export function nativeLinearCrossEntropy(h: tf.Tensor2D, wt: tf.Tensor2D, targets: Int32Array, weights: Float32Array, scale: number, grad: boolean): { nll: tf.Tensor1D; dh?: tf.Tensor2D } | undefined {
  if (!nativeMatmulActive() || h.dtype !== 'float32' || wt.dtype !== 'float32') return undefined;
  const load = loadNativeAddon();
  if (!load.ok) return undefined;
  const [n, D] = h.shape;
  if (wt.shape[0] !== D || targets.length !== n || weights.length !== n) {
    throw new RangeError(`nativeLinearCrossEntropy: h [${h.shape}], wt [${wt.shape}], ${targets.length} targets, ${weights.length} weights do not match`);
  }
  if (!registered) {
    for (const backendName of ['wasm', 'cpu']) tf.registerKernel({ kernelName: KERNEL, backendName, kernelFunc: kernel(load.addon, backendName) });
    registered = true;
  }
  const out = tf.engine().runKernel(KERNEL, { h, wt }, { targets, weights, scale, grad } as unknown as tf.NamedAttrMap) as unknown as tf.Tensor[];
  return { nll: out[0] as tf.Tensor1D, ...(grad ? { dh: out[1] as tf.Tensor2D } : {}) };
}

