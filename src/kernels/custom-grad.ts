/**
 * A typed wrapper over `tf.customGrad`: the forward receives its inputs as a tuple plus the save
 * function, and returns the value with a gradient function that gives one gradient per input
 * (in input order). Inputs that never train (frozen weights) get a zeros-like gradient only if they
 * are passed as inputs at all — keep frozen tensors in the closure instead.
 */
import { tf } from '../backend/tf.ts';

export type GradFunc = (dy: tf.Tensor, saved: tf.Tensor[]) => tf.Tensor[];

export function withGrad<I extends tf.Tensor[]>(
  forward: (inputs: I, save: tf.GradSaveFunc) => { value: tf.Tensor; gradFunc: GradFunc },
): (...inputs: I) => tf.Tensor {
  const f = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const save = args[args.length - 1] as tf.GradSaveFunc;
    const inputs = args.slice(0, -1) as I;
    return forward(inputs, save);
  });
  return (...inputs: I) => f(...inputs);
}

interface EngineState {
  gradientDepth?: number;
  activeTape?: unknown;
}
const engineState = (): EngineState | undefined => (tf.engine() as unknown as { state?: EngineState }).state;

/** Whether gradients are being recorded (inside tf.grads / variableGrads). */
export function recordingGradients(): boolean {
  // tfjs has no public accessor; the engine counts nested gradient scopes in state.gradientDepth.
  return (engineState()?.gradientDepth ?? 1) > 0;
}

/**
 * Gradients of f with respect to xs (dy: the upstream gradient of f's value), callable from inside a
 * custom op's gradFunc while an outer tf.grads / variableGrads is backpropagating. tfjs's
 * engine.gradients, run there, starts a fresh tape in the engine's single `activeTape` slot and sets
 * it to null when done, so the outer pass would then find no tape to clean up (a TypeError, and its
 * saved tensors leaked); the outer tape is put back here. Missing gradients are zeros.
 */
export function nestedGradients(f: () => tf.Tensor, xs: tf.Tensor[], dy: tf.Tensor): tf.Tensor[] {
  const state = engineState();
  const outer = state?.activeTape;
  try {
    const { grads } = tf.engine().gradients(f, xs, dy, true);
    return grads.map((g, i) => g ?? tf.zerosLike(xs[i]!));
  } finally {
    if (state !== undefined) state.activeTape = outer;
  }
}
