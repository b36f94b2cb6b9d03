#!/usr/bin/env node
// The `clinilora` command: registers tsx (the library ships as TypeScript source) and runs the CLI.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
