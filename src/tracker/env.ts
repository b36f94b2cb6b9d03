/**
 * The environment a run records: Node, OS, CPU, the tfjs backend, the installed versions of the
 * package's dependencies and the lockfile's sha256 (read once a process).
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { cpus, hostname, release as osRelease } from 'node:os';
import { dirname, join } from 'node:path';
import { packageRoot } from '../data/index.ts';
import type { EnvInfo } from './schema.ts';

export type BackendSummary = NonNullable<EnvInfo['backend']>;

/**
 * The node_modules directory Node resolves packages from for code under `start`: the nearest one in
 * `start` or its ancestors (a reproduce worktree finds the main tree's through a link beside it).
 */
export function nodeModulesDir(start: string): string | null {
  for (let dir = start; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'node_modules'))) return join(dir, 'node_modules');
    if (dirname(dir) === dir) return null;
  }
}

let packagesCache: Pick<EnvInfo, 'packages' | 'lockfileSha256'> | undefined;

/** Installed versions of package.json's dependencies, and the lockfile's sha256. */
export function packageInfo(): Pick<EnvInfo, 'packages' | 'lockfileSha256'> {
  if (packagesCache !== undefined) return packagesCache;
  const root = packageRoot();
  const packages: Record<string, string> = {};
  const modules = nodeModulesDir(root) ?? join(root, 'node_modules');
  try {
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as Record<string, Record<string, string> | undefined>;
    const names = new Set(['dependencies', 'devDependencies', 'optionalDependencies'].flatMap((k) => Object.keys(pkg[k] ?? {})));
    for (const name of [...names].sort()) {
      try {
        packages[name] = (JSON.parse(readFileSync(join(modules, name, 'package.json'), 'utf8')) as { version: string }).version;
      } catch {
        // not installed (an optional dependency): left out
      }
    }
  } catch {
    // no package.json: nothing to list
  }
  const lock = join(root, 'package-lock.json');
  const lockfileSha256 = existsSync(lock) ? createHash('sha256').update(readFileSync(lock)).digest('hex') : null;
  packagesCache = { packages, lockfileSha256 };
  return packagesCache;
}

export function envInfo(backend: BackendSummary | null): EnvInfo {
  const cpu = cpus();
  return {
    node: process.version,
    platform: process.platform,
    arch: process.arch,
    osRelease: osRelease(),
    cpu: cpu[0]?.model.trim() ?? 'unknown',
    cpus: cpu.length,
    pid: process.pid,
    host: hostname(),
    backend,
    ...packageInfo(),
  };
}
