/** Finds installed packages without loading them (doctor, optional backends). */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const require = createRequire(import.meta.url);

export interface InstalledPackage {
  /** The name under node_modules that was looked up. */
  lookup: string;
  /** The `name` in its package.json: differs from `lookup` for an npm alias (`npm:other@x`). */
  name: string;
  version: string;
  dir: string;
}

/**
 * The package `lookup` as Node would resolve it from this library, read from its package.json (not
 * through `exports`, which may hide package.json); undefined when absent.
 */
export function findPackage(lookup: string): InstalledPackage | undefined {
  for (const base of require.resolve.paths(lookup) ?? []) {
    const dir = path.join(base, lookup);
    try {
      const pkg = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: unknown; version?: unknown };
      return { lookup, name: String(pkg.name ?? lookup), version: String(pkg.version ?? '?'), dir };
    } catch {
      // not in this node_modules
    }
  }
  return undefined;
}
