/**
 * How a tslab cell's `import ... from 'clinilora'` works. tslab compiles cells to CommonJS, so that
 * import becomes `require('clinilora')`; our package is ESM TypeScript run through tsx, which Node 20
 * cannot `require` (require(esm) skips tsx's loader hooks, measured: the raw `.ts` fails to parse).
 * So the host process (kernel or in-process executor) imports the entries as ESM first and:
 *  - at run time, `require('clinilora')` (and `clinilora/notebook`) returns those very module
 *    namespaces (one instance of the library and of tfjs in the process, whoever loaded it);
 *  - at type-check time, tslab's TypeScript finds virtual `node_modules/clinilora.d.ts` and
 *    `node_modules/clinilora/notebook.d.ts` in the cell's directory that re-export the declarations
 *    from `ensureDeclarations()`.
 */
import Module, { createRequire } from 'node:module';
import { join } from 'node:path';
import { packageRoot } from '../data/index.ts';
import { NOTEBOOK_ENTRIES, type NotebookModuleName } from './declarations.ts';

/** The subset of TypeScript's `sys` tslab's converter reads files through. */
interface TsSys {
  fileExists(path: string): boolean;
  readFile(path: string, encoding?: string): string | undefined;
  directoryExists(path: string): boolean;
}

const STATE = Symbol.for('clinilora.notebook.modules');
interface State {
  modules: Map<string, unknown>;
  typesDir: string;
}
type Global = typeof globalThis & { [STATE]?: State };

/** Loads the entries as ESM (the namespaces `require` will hand out). */
export async function importNotebookModules(): Promise<Record<NotebookModuleName, unknown>> {
  const src = join(packageRoot(), 'src');
  const out: Partial<Record<NotebookModuleName, unknown>> = {};
  for (const [name, file] of Object.entries(NOTEBOOK_ENTRIES) as [NotebookModuleName, string][]) {
    out[name] = await import(join(src, file));
  }
  return out as Record<NotebookModuleName, unknown>;
}

/** The virtual declaration files tslab's TypeScript sees (path suffix → content). */
function virtualFiles(typesDir: string): Map<string, string> {
  const reexport = (entry: string): string => `export * from ${JSON.stringify(join(typesDir, entry.replace(/\.ts$/, '')))};\n`;
  return new Map([
    ['/node_modules/clinilora.d.ts', reexport(NOTEBOOK_ENTRIES.clinilora)],
    ['/node_modules/clinilora/notebook.d.ts', reexport(NOTEBOOK_ENTRIES['clinilora/notebook'])],
  ]);
}

/**
 * Makes `clinilora` importable in cells of this process. Call before tslab creates its converter
 * (the kernel and `createCellEngine` do). Idempotent; a second call replaces the modules.
 */
export function installNotebookModules(modules: Record<NotebookModuleName, unknown>, typesDir: string): void {
  const g = globalThis as Global;
  const first = g[STATE] === undefined;
  g[STATE] = { modules: new Map(Object.entries(modules)), typesDir };
  if (!first) return;

  // Run time: hand out the ESM namespaces for the bare names.
  type Load = (request: string, parent: unknown, isMain: boolean) => unknown;
  const M = Module as unknown as { _load: Load };
  const load = M._load;
  M._load = function (this: unknown, request: string, parent: unknown, isMain: boolean): unknown {
    const state = g[STATE];
    if (state !== undefined && state.modules.has(request)) return state.modules.get(request);
    return load.call(this, request, parent, isMain);
  };

  // Type-check time: tslab's converter reads through `ts.sys` (its own TypeScript 5.0).
  const tslabRequire = createRequire(createRequire(join(packageRoot(), 'package.json')).resolve('tslab'));
  const ts = tslabRequire('@tslab/typescript-for-tslab') as { sys: TsSys };
  const sys = ts.sys;
  const { fileExists, readFile, directoryExists } = { fileExists: sys.fileExists.bind(sys), readFile: sys.readFile.bind(sys), directoryExists: sys.directoryExists.bind(sys) };
  const match = (path: string): string | undefined => {
    const state = g[STATE];
    if (state === undefined) return undefined;
    for (const [suffix, content] of virtualFiles(state.typesDir)) if (path.endsWith(suffix)) return content;
    return undefined;
  };
  sys.fileExists = (path) => match(path) !== undefined || fileExists(path);
  sys.readFile = (path, encoding) => match(path) ?? readFile(path, encoding);
  sys.directoryExists = (path) => path.endsWith('/node_modules/clinilora') || directoryExists(path);
}
