/**
 * Registers the "clinilora (TypeScript)" kernel with Jupyter: a kernelspec directory holding
 * kernel.json whose argv runs `bin/clinilora-kernel.js` with this Node. Written directly (no Python
 * needed), where `jupyter kernelspec install` would put it: the user's Jupyter data directory, or
 * `<prefix>/share/jupyter/kernels/` with a prefix (then JUPYTER_PATH=<prefix>/share/jupyter finds it).
 */
import { mkdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { packageRoot } from '../data/index.ts';
import { writeFileAtomic } from '../util/atomic.ts';
import { KERNEL_DISPLAY_NAME, KERNEL_NAME } from './kernel.ts';

export interface KernelSpec {
  argv: string[];
  display_name: string;
  language: string;
  interrupt_mode: 'signal';
  env: Record<string, string>;
  metadata: Record<string, unknown>;
}

export interface KernelSpecOptions {
  /** Node to run the kernel with (default this process's). */
  node?: string;
  /** Extra environment for the kernel process (e.g. CLINILORA_HOME). */
  env?: Record<string, string>;
}

/** The kernelspec: argv launches our kernel entry with the library importable as `clinilora`. */
export function kernelSpec(opts: KernelSpecOptions = {}): KernelSpec {
  return {
    argv: [opts.node ?? process.execPath, join(packageRoot(), 'bin', 'clinilora-kernel.js'), '--connection-file', '{connection_file}'],
    display_name: KERNEL_DISPLAY_NAME,
    language: 'typescript',
    interrupt_mode: 'signal',
    env: { ...(opts.env ?? {}) },
    metadata: { debugger: false },
  };
}

/** Jupyter's per-user data directory, as jupyter_core computes it. */
export function jupyterDataDir(env: NodeJS.ProcessEnv = process.env, platform: NodeJS.Platform = process.platform): string {
  if (env.JUPYTER_DATA_DIR !== undefined && env.JUPYTER_DATA_DIR !== '') return resolve(env.JUPYTER_DATA_DIR);
  if (platform === 'darwin') return join(homedir(), 'Library', 'Jupyter');
  if (platform === 'win32') return join(env.APPDATA ?? join(homedir(), 'AppData', 'Roaming'), 'jupyter');
  const xdg = env.XDG_DATA_HOME !== undefined && env.XDG_DATA_HOME !== '' ? env.XDG_DATA_HOME : join(homedir(), '.local', 'share');
  return join(xdg, 'jupyter');
}

export interface InstallOptions extends KernelSpecOptions {
  /** Install under `<prefix>/share/jupyter/kernels/` instead of the user's data directory. */
  prefix?: string;
  /** Kernel name (directory), default "clinilora". */
  name?: string;
}

/** Writes the kernelspec and returns its directory. */
export function installKernelSpec(opts: InstallOptions = {}): string {
  const kernels = opts.prefix !== undefined ? join(resolve(opts.prefix), 'share', 'jupyter', 'kernels') : join(jupyterDataDir(), 'kernels');
  const dir = join(kernels, opts.name ?? KERNEL_NAME);
  mkdirSync(dir, { recursive: true });
  writeFileAtomic(join(dir, 'kernel.json'), JSON.stringify(kernelSpec(opts), null, 2) + '\n');
  return dir;
}

/** `clinilora-kernel.js install [--prefix DIR] [--name NAME]`. */
export function installMain(argv: string[]): number {
  const opts: InstallOptions = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--prefix' || a === '--name') {
      const v = argv[++i];
      if (v === undefined) {
        process.stderr.write(`${a} needs a value\n`);
        return 2;
      }
      if (a === '--prefix') opts.prefix = v;
      else opts.name = v;
    } else if (a === '--user') {
      // the default
    } else {
      process.stderr.write(`unknown argument '${a}'. Usage: clinilora-kernel install [--user | --prefix DIR] [--name NAME]\n`);
      return 2;
    }
  }
  const dir = installKernelSpec(opts);
  process.stdout.write(`Installed kernel "${KERNEL_DISPLAY_NAME}" (name ${opts.name ?? KERNEL_NAME}) in ${dir}\n`);
  if (opts.prefix !== undefined) process.stdout.write(`Jupyter finds it with JUPYTER_PATH=${join(resolve(opts.prefix), 'share', 'jupyter')}\n`);
  return 0;
}
