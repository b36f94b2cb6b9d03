/** Public API of clinilora. An explicit export list: what is not here is internal. */
export { CliniloraError, type ErrorCode, type ErrorDetails } from './errors.ts';
export { Rng, type RngState } from './util/random.ts';
export { writeFileAtomic, writeDirAtomic } from './util/atomic.ts';
export { initBackend, currentBackend, type BackendName, type BackendInfo, type BackendOptions } from './backend/index.ts';
export type { Linear } from './kernels/linear.ts';
