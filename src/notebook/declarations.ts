/**
 * Type declarations of the library for notebook cells. tslab type-checks every cell with its own
 * TypeScript 5.0 (Node10 resolution, no `exports` support, no `.ts` imports): pointed at our `.ts`
 * sources it would try to compile and emit them itself, so cells see the library through `.d.ts`
 * files instead, emitted once from `src/` and cached until a source file changes.
 *
 * Emitted with the project's TypeScript when it is installed (a devDependency), else with tslab's.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir, userInfo } from 'node:os';
import { join, relative } from 'node:path';
import { packageRoot } from '../data/index.ts';
import { writeFileAtomic } from '../util/atomic.ts';

/** The entry points cells import, relative to `src/` (module name → file). */
export const NOTEBOOK_ENTRIES = { clinilora: 'index.ts', 'clinilora/notebook': 'notebook/index.ts' } as const;
export type NotebookModuleName = keyof typeof NOTEBOOK_ENTRIES;

export interface Declarations {
  /** Directory holding `<entry>.d.ts` files mirroring `src/`. */
  dir: string;
  /** true when this call emitted them (false: cache hit). */
  emitted: boolean;
  /** Which TypeScript emitted them. */
  typescript: string;
  ms: number;
}

interface TsApi {
  version: string;
  sys: { newLine: string };
  readConfigFile(path: string, read: (p: string) => string | undefined): { config?: unknown; error?: unknown };
  parseJsonConfigFileContent(json: unknown, host: unknown, base: string): { options: Record<string, unknown> };
  createProgram(roots: string[], options: Record<string, unknown>): { emit(): { emitSkipped: boolean } };
}

function loadTypeScript(root: string): TsApi {
  const req = createRequire(join(root, 'package.json'));
  for (const id of ['typescript', '@tslab/typescript-for-tslab']) {
    try {
      return req(id) as TsApi;
    } catch {
      // try the next one
    }
  }
  // tslab's TypeScript is nested under tslab when hoisting did not move it.
  return createRequire(req.resolve('tslab'))('@tslab/typescript-for-tslab') as TsApi;
}

/** Every .ts file under `dir` (sorted), for the cache key. */
function sourceFiles(dir: string, out: string[] = []): string[] {
  for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const p = join(dir, e.name);
    if (e.isDirectory()) sourceFiles(p, out);
    else if (e.name.endsWith('.ts')) out.push(p);
  }
  return out;
}

/** Where the cache lives: node_modules/.cache under the package (so `@types` and tfjs types resolve from it). */
function cacheBase(root: string): string {
  const nm = join(root, 'node_modules');
  if (existsSync(nm)) return join(nm, '.cache', 'clinilora-notebook');
  return join(tmpdir(), `clinilora-notebook-${userInfo().username}`);
}

/**
 * Declarations for the notebook entries, emitted when missing or stale. Safe to call from several
 * processes at once: each emits into its own directory and renames it into place.
 */
export function ensureDeclarations(opts: { root?: string } = {}): Declarations {
  const t0 = Date.now();
  const root = opts.root ?? packageRoot();
  const src = join(root, 'src');
  const ts = loadTypeScript(root);
  const hash = createHash('sha256').update(ts.version);
  for (const f of sourceFiles(src)) {
    const st = statSync(f);
    hash.update(`${relative(src, f)}\0${st.size}\0${st.mtimeMs}\n`);
  }
  const key = hash.digest('hex').slice(0, 16);
  const base = cacheBase(root);
  const dir = join(base, `types-${key}`);
  if (existsSync(join(dir, 'index.d.ts'))) return { dir, emitted: false, typescript: ts.version, ms: Date.now() - t0 };

  mkdirSync(base, { recursive: true });
  const tmp = join(base, `.tmp-${process.pid}-${Date.now()}`);
  const read = (p: string): string | undefined => (existsSync(p) ? readFileSync(p, 'utf8') : undefined);
  const parsed = ts.parseJsonConfigFileContent(ts.readConfigFile(join(root, 'tsconfig.json'), read).config ?? {}, { useCaseSensitiveFileNames: true, readDirectory: () => [], fileExists: existsSync, readFile: read }, root);
  const options: Record<string, unknown> = {
    ...parsed.options,
    noEmit: false,
    declaration: true,
    emitDeclarationOnly: true,
    outDir: tmp,
    rootDir: src,
    noUnusedLocals: false,
    noUnusedParameters: false,
    typeRoots: [join(root, 'node_modules', '@types')],
  };
  // Type errors do not stop declaration emit; the library's own `npm run typecheck` reports them.
  ts.createProgram(Object.values(NOTEBOOK_ENTRIES).map((e) => join(src, e)), options).emit();
  writeFileAtomic(join(tmp, 'KEY'), `${key}\n`);
  try {
    renameSync(tmp, dir);
  } catch (e) {
    // Another process won the race: its copy is the same.
    rmSync(tmp, { recursive: true, force: true });
    if (!existsSync(join(dir, 'index.d.ts'))) throw e;
  }
  // Stale copies from older sources (left an hour for kernels still reading them).
  for (const name of readdirSync(base)) {
    const p = join(base, name);
    if (name.startsWith('types-') && name !== `types-${key}` && Date.now() - statSync(p).mtimeMs > 3_600_000) rmSync(p, { recursive: true, force: true });
  }
  return { dir, emitted: true, typescript: ts.version, ms: Date.now() - t0 };
}
