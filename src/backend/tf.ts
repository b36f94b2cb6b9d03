/**
 * The one import of TensorFlow.js for the whole library: the `@tensorflow/tfjs` union package (its
 * Node bundle registers every gradient and the chained ops; importing '@tensorflow/tfjs-core' alone
 * does neither) plus the wasm backend. Library code imports `tf` from here and uses functional ops
 * (`tf.sum(x)`).
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';

export { tf };
