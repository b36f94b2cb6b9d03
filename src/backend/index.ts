/**
 * Picks and starts the TensorFlow.js backend. Minimal version: cpu and single-threaded wasm.
 * (The backend helper extends this with tensorflow (tfjs-node[-gpu]) and two-thread wasm.)
 */
import { tf } from './tf.ts';
import { CliniloraError } from '../errors.ts';

export type BackendName = 'tensorflow' | 'wasm' | 'cpu';

export interface BackendOptions {
  /** Explicit choice; wins over CLINILORA_BACKEND. An unavailable explicit choice is an error. */
  backend?: BackendName;
}

export interface BackendInfo {
  name: BackendName;
  threads: number;
}

let current: BackendInfo | undefined;

export async function initBackend(opts: BackendOptions = {}): Promise<BackendInfo> {
  const wanted = opts.backend ?? (process.env.CLINILORA_BACKEND as BackendName | undefined);
  const order: BackendName[] = wanted !== undefined ? [wanted] : ['wasm', 'cpu'];
  for (const name of order) {
    if (name === 'tensorflow') continue;
    if (await tf.setBackend(name)) {
      await tf.ready();
      current = { name, threads: 1 };
      return current;
    }
  }
  throw new CliniloraError('E_BACKEND', `backend '${wanted ?? order.join(', ')}' is not available`, {
    field: 'CLINILORA_BACKEND',
    expected: 'tensorflow | wasm | cpu',
    found: String(wanted),
  });
}

export function currentBackend(): BackendInfo | undefined {
  return current;
}
