/**
 * The native `tensorflow` backend (libtensorflow through @tensorflow/tfjs-node[-gpu]). Both packages
 * are optionalDependencies whose install downloads libtensorflow, so they are often absent: import
 * them dynamically and report why not, never require them.
 */
import { tf } from './tf.ts';
import { findPackage } from './packages.ts';

export const TENSORFLOW_PACKAGES = ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node'] as const;

export interface TensorflowLoad {
  ok: boolean;
  /** The package that registered the backend, when ok. */
  pkg?: string;
  /** Why each package did not load ("not installed", or the first line of its error). */
  reasons: string[];
}

function firstLine(e: unknown): string {
  const code = (e as { code?: unknown } | null)?.code;
  if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') return 'not installed';
  return String((e as Error | null)?.message ?? e).split('\n')[0]!;
}

let loaded: TensorflowLoad | undefined;

/** Tries the GPU package, then the CPU one; once per process. */
export async function loadTensorflowBackend(): Promise<TensorflowLoad> {
  if (loaded !== undefined) return loaded;
  const reasons: string[] = [];
  for (const pkg of TENSORFLOW_PACKAGES) {
    const found = findPackage(pkg);
    if (found === undefined) {
      reasons.push(`${pkg}: not installed`);
      continue;
    }
    if (found.name !== pkg) {
      // e.g. danfojs-node's override maps @tensorflow/tfjs-node to plain @tensorflow/tfjs: loading that
      // would only add a second copy of tfjs.
      reasons.push(`${pkg}: not installed (node_modules has an alias of ${found.name}@${found.version})`);
      continue;
    }
    try {
      // A non-literal specifier: the type checker must not require the package to exist.
      const spec: string = pkg;
      await import(spec);
      if (tf.findBackendFactory('tensorflow') !== null) {
        loaded = { ok: true, pkg, reasons };
        return loaded;
      }
      reasons.push(`${pkg}: loaded, but no 'tensorflow' backend was registered with our @tensorflow/tfjs`);
    } catch (e) {
      reasons.push(`${pkg}: ${firstLine(e)}`);
    }
  }
  loaded = { ok: false, reasons };
  return loaded;
}
