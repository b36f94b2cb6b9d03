/**
 * Shared set-up of the native-addon tests: the wasm backend with the native kernels installed. Returns
 * why the tests should skip (the addon is not active here), or false; under CLINILORA_REQUIRE_NATIVE=1
 * (CI) an inactive addon is an error instead. Call it from `before()` and skip inside each test with
 * `if (skip) return t.skip(skip)` — a `{ skip }` option is read when the test is defined, before
 * `before()` has run.
 */
import { initBackend } from '../src/backend/index.ts';
import { installNativeKernels } from '../src/backend/native.ts';

export async function nativeSkipReason(): Promise<string | false> {
  await initBackend({ backend: 'wasm' });
  const st = installNativeKernels();
  if (st.active) return false;
  if (process.env.CLINILORA_REQUIRE_NATIVE === '1') throw new Error(`native addon required (CLINILORA_REQUIRE_NATIVE=1) but: ${st.reason}`);
  return `native addon not active: ${st.reason}`;
}
