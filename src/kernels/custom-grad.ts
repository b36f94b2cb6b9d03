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
