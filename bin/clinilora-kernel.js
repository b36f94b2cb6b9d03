#!/usr/bin/env node
// The "clinilora (TypeScript)" Jupyter kernel (tslab with the library importable as `clinilora`).
//   clinilora-kernel.js --connection-file FILE      run the kernel (what kernel.json's argv does)
//   clinilora-kernel.js install [--prefix DIR]      register the kernelspec (npm run kernel:install)
// tsx's ESM hooks load the library's TypeScript source; cells reach it through src/notebook/modules.ts.
import { register } from 'tsx/esm/api';

register();
const argv = process.argv.slice(2);
if (argv[0] === 'install') {
  const { installMain } = await import('../src/notebook/install.ts');
  process.exitCode = installMain(argv.slice(1));
} else {
  const i = argv.indexOf('--connection-file');
  const file = i >= 0 ? argv[i + 1] : argv[0];
  if (file === undefined) {
    process.stderr.write('usage: clinilora-kernel.js --connection-file FILE | install [--prefix DIR]\n');
    process.exit(2);
  }
  const { startKernel } = await import('../src/notebook/kernel.ts');
  await startKernel(file);
}
