/** Shared helpers for the tracker tests (not a test file itself). */
import { spawn } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import { join } from 'node:path';
import { defineConfig } from '../src/config/index.ts';
import type { SplitManifest } from '../src/data/manifest.ts';

export const repoRoot = join(import.meta.dirname, '..');
export const trackerUrl = pathToFileURL(join(repoRoot, 'src/tracker/index.ts')).href;
export const configUrl = pathToFileURL(join(repoRoot, 'src/config/index.ts')).href;

export function smallConfig(): ReturnType<typeof defineConfig> {
  return defineConfig({ task: 'auditor', seed: 7, training: { lr: 3e-4, maxSteps: 10 } });
}

export function fakeManifest(): SplitManifest {
  return {
    schema: 'clinilora.split-manifest',
    version: 1,
    task: 'auditor',
    seed: 7,
    ratios: { train: 0.5, validation: 0.25, test: 0.25 },
    generator: { name: 'test', version: '1' },
    options: {},
    sources: [{ path: 'data/src.csv', bytes: 12, sha256: 'cd'.repeat(32) }],
    counts: { train: 2, validation: 1, test: 1 },
    dropped: {},
    splits: { train: ['a', 'b'], validation: ['c'], test: ['d'] },
    sha256: 'ab'.repeat(32),
  };
}

/** Runs an ESM TypeScript snippet in a child node (tsx), resolving with its exit code and output. */
export function runChild(code: string, env: Record<string, string> = {}): Promise<{ code: number | null; signal: string | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
      cwd: repoRoot,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('exit', (code, signal) => resolve({ code, signal, out }));
  });
}
