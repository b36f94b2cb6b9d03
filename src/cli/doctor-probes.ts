/** Finds the optional parts doctor reports on: extra backends, browsers, notebooks, Python, GPUs. */
import { execFile } from 'node:child_process';
import { accessSync, constants, existsSync } from 'node:fs';
import path from 'node:path';
import { findPackage } from '../backend/packages.ts';

export interface OptionalPart {
  found: boolean;
  /** Version, path or why not. */
  detail: string;
}

/** The first executable `name` on PATH, or undefined. */
export function which(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (dir === '') continue;
    const file = path.join(dir, name);
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      // not here
    }
  }
  return undefined;
}

interface RunResult {
  ok: boolean;
  out: string;
}

function run(file: string, args: string[], timeoutMs: number): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(file, args, { timeout: timeoutMs, encoding: 'utf8' }, (err, stdout, stderr) => {
      const out = (err === null ? stdout : stderr || stdout || String(err.message)).trim();
      resolve({ ok: err === null, out });
    });
  });
}

function lastLine(s: string): string {
  const lines = s.split('\n').filter((l) => l.trim() !== '');
  return lines[lines.length - 1]?.trim() ?? '';
}

function pkgPart(name: string): OptionalPart {
  const p = findPackage(name);
  if (p === undefined) return { found: false, detail: 'not installed' };
  if (p.name !== name) return { found: false, detail: `not installed (an alias of ${p.name}@${p.version} is)` };
  return { found: true, detail: p.version };
}

async function chromium(): Promise<OptionalPart> {
  const file = '/usr/bin/chromium';
  if (!existsSync(file)) return { found: false, detail: `${file} absent` };
  const r = await run(file, ['--version'], 15_000);
  return { found: true, detail: r.ok ? `${file} (${lastLine(r.out)})` : file };
}

async function jupyter(): Promise<OptionalPart> {
  const file = which('jupyter');
  return file === undefined ? { found: false, detail: 'not on PATH' } : { found: true, detail: file };
}

/** python3 on PATH, and Debian's /usr/bin/python3 when that is another one (pyenv shims hide it). */
async function torch(): Promise<OptionalPart> {
  const pys = [...new Set([which('python3'), existsSync('/usr/bin/python3') ? '/usr/bin/python3' : undefined])].filter(
    (p): p is string => p !== undefined,
  );
  if (pys.length === 0) return { found: false, detail: 'python3 not on PATH' };
  const results = await Promise.all(pys.map((py) => run(py, ['-c', 'import torch; print(torch.__version__)'], 60_000)));
  const i = results.findIndex((r) => r.ok);
  if (i >= 0) return { found: true, detail: `torch ${lastLine(results[i]!.out)} (${pys[i]})` };
  return { found: false, detail: pys.map((py, j) => `${py}: ${lastLine(results[j]!.out)}`).join('; ') };
}

async function nvidiaGpu(): Promise<OptionalPart> {
  const smi = which('nvidia-smi');
  if (smi === undefined) return { found: false, detail: 'nvidia-smi not on PATH' };
  const r = await run(smi, ['--query-gpu=name,memory.total,driver_version', '--format=csv,noheader'], 20_000);
  return r.ok && r.out !== '' ? { found: true, detail: r.out.split('\n').join('; ') } : { found: false, detail: `nvidia-smi: ${lastLine(r.out)}` };
}

/** All optional parts, probed concurrently (python's `import torch` is the slow one). */
export async function probeOptionalParts(): Promise<Record<string, OptionalPart>> {
  const [chr, jup, tor, gpu] = await Promise.all([chromium(), jupyter(), torch(), nvidiaGpu()]);
  return {
    '@tensorflow/tfjs-node': pkgPart('@tensorflow/tfjs-node'),
    '@tensorflow/tfjs-node-gpu': pkgPart('@tensorflow/tfjs-node-gpu'),
    webgpu: pkgPart('webgpu'),
    chromium: chr,
    jupyter: jup,
    'python3 torch': tor,
    'nvidia gpu': gpu,
  };
}

/** Versions of the packages clinilora is built on (null when absent). */
export function keyPackageVersions(): Record<string, string | null> {
  const names = ['@tensorflow/tfjs', '@tensorflow/tfjs-backend-wasm', '@huggingface/gguf', 'node-llama-cpp', 'tsx', 'typescript'];
  return Object.fromEntries(names.map((n) => [n, findPackage(n)?.version ?? null]));
}
