/**
 * A cell engine over tslab's converter and executor: runs one TypeScript cell and reports what
 * Jupyter needs (streams, display data, the value of a trailing expression, a structured error),
 * which tslab 1.0.22 itself only prints (FACTS: its last expression goes to stdout, its errors to
 * stderr). Both the Jupyter kernel (kernel.ts) and the in-process notebook runner (run.ts) use it.
 */
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { inspect as utilInspect } from 'node:util';
import { packageRoot } from '../data/index.ts';
import { ensureDeclarations } from './declarations.ts';
import { setCurrentSink, toMimeBundle, type CellSink, type DisplayMessage, type MimeBundle } from './display-channel.ts';
import { importNotebookModules, installNotebookModules } from './modules.ts';
import { setCurrentCell, type CellContext } from './origin.ts';

export interface CellError {
  ename: string;
  evalue: string;
  traceback: string[];
}

export type CellOutcome = { status: 'ok'; result: MimeBundle | null } | { status: 'error'; error: CellError };

export interface CellEngine {
  /** Runs one cell; outputs go to `sink` while it runs. Never throws for the cell's own errors. */
  execute(code: string, sink: CellSink, cell?: CellContext): Promise<CellOutcome>;
  complete(code: string, cursor: number): { start: number; end: number; matches: string[] };
  /** Quick info (type and docs) at the cursor, or null. */
  inspect(code: string, cursor: number): string | null;
  isComplete(code: string): { status: 'complete' | 'incomplete'; indent?: string };
  /** Aborts a cell waiting on a top-level await. */
  interrupt(): void;
  close(): void;
}

export interface EngineOptions {
  /** Directory cells run in and resolve relative imports from (default process.cwd()). */
  cwd?: string;
  /**
   * Keep stdout/stderr routed to the last cell's sink after it finished (Jupyter kernels forward
   * late output that way). Default false: the process streams are restored after each cell.
   */
  keepStreams?: boolean;
}

// --- tslab's CommonJS API (typed here, not through its .d.ts, which pulls TypeScript 5.0's) ---------
interface TslabConverter {
  close(): void;
}
interface TslabExecutor {
  execute(src: string): Promise<boolean>;
  locals: Record<string, unknown>;
  inspect(src: string, position: number): unknown;
  complete(src: string, position: number): { start: number; end: number; candidates: string[] };
  interrupt(): void;
  close(): void;
}
interface TslabConsole {
  log(message?: unknown, ...rest: unknown[]): void;
  error(message?: unknown, ...rest: unknown[]): void;
}
interface Tslab {
  converter: { createConverter(o: { isJS: boolean; isBrowser: boolean }): TslabConverter; isCompleteCode(code: string): { completed: boolean; indent?: string } };
  executor: { createExecutor(rootDir: string, convs: { node: TslabConverter; browser: TslabConverter; close(): void }, console: TslabConsole): TslabExecutor };
  inspect: { printQuickInfo(info: unknown): string };
  jupyter: { lastWriteDisplayData: ((d: DisplayMessage, update: boolean) => void) | null };
}

export function loadTslab(): Tslab {
  const req = createRequire(join(packageRoot(), 'package.json'));
  const dist = (m: string): string => req.resolve(`tslab/dist/${m}.js`);
  return {
    converter: req(dist('converter')) as Tslab['converter'],
    executor: req(dist('executor')) as Tslab['executor'],
    inspect: req(dist('inspect')) as Tslab['inspect'],
    jupyter: req(dist('jupyter')) as Tslab['jupyter'],
  };
}

/** tslab prints a compile diagnostic as console.error('%s%d:%d - %s', file, line, col, message). */
const DIAGNOSTIC_FORMAT = '%s%d:%d - %s';

/** Stack lines that belong to the cell, not to tslab or Node internals. */
function cellFrames(stack: string): string[] {
  return stack
    .split('\n')
    .filter((l) => /^\s+at /.test(l) && !/node:internal|node:vm|[/\\]tslab[/\\]dist[/\\]|[/\\]notebook[/\\]engine\.ts/.test(l));
}

/**
 * tslab 1.0.22 rewrites a previous cell's variable `v` to `exports.v`, except in a shorthand property
 * (`{ v }` stays `{ v }`: a ReferenceError, measured). Each variable is therefore also reachable as a
 * global getter/setter over the executor's locals, unless the name is already a global.
 */
function exposeLocals(locals: Record<string, unknown>, defined: Set<string>): void {
  const g = globalThis as Record<string, unknown>;
  for (const name of Object.keys(locals)) {
    if (name in g) continue;
    defined.add(name);
    Object.defineProperty(g, name, {
      configurable: true,
      enumerable: false,
      get: () => locals[name],
      set: (v: unknown) => {
        locals[name] = v;
      },
    });
  }
}

export function errorOf(e: unknown): CellError {
  if (e instanceof Error) {
    const ename = e.name || e.constructor.name || 'Error';
    const evalue = e.message;
    return { ename, evalue, traceback: [`${ename}: ${evalue}`, ...cellFrames(e.stack ?? '')] };
  }
  const evalue = typeof e === 'string' ? e : utilInspect(e);
  return { ename: 'Error', evalue, traceback: [`Error: ${evalue}`] };
}

/**
 * Creates an engine: emits (or reuses) the library's declarations, imports the library, makes it
 * importable as `clinilora` in cells, and starts tslab's TypeScript converter (a few seconds).
 */
export async function createCellEngine(opts: EngineOptions = {}): Promise<CellEngine> {
  const cwd = opts.cwd ?? process.cwd();
  const decl = ensureDeclarations();
  installNotebookModules(await importNotebookModules(), decl.dir);
  const tslab = loadTslab();

  // tslab's converter reads the current directory once, when created.
  const before = process.cwd();
  if (cwd !== before) process.chdir(cwd);
  let node: TslabConverter;
  try {
    node = tslab.converter.createConverter({ isJS: false, isBrowser: false });
  } finally {
    if (cwd !== before) process.chdir(before);
  }
  let browser: TslabConverter | undefined;
  const convs = {
    node,
    get browser(): TslabConverter {
      browser ??= tslab.converter.createConverter({ isJS: false, isBrowser: true });
      return browser;
    },
    close(): void {
      node.close();
      browser?.close();
    },
  };

  // What the executor reports for the running cell.
  let lastValue: { value: unknown } | null = null;
  let diagnostics: string[] = [];
  let thrown: { error: unknown } | null = null;
  const console: TslabConsole = {
    log: (value: unknown) => {
      lastValue = { value };
    },
    error: (first: unknown, ...rest: unknown[]) => {
      if (first === DIAGNOSTIC_FORMAT) {
        const [file, line, col, message] = rest as [string, number, number, string];
        diagnostics.push(`${file}${line}:${col} - ${message}`);
      } else if (thrown === null) {
        thrown = { error: first };
      }
    },
  };
  const executor = tslab.executor.createExecutor(cwd, convs, console);

  const streams = { stdout: process.stdout.write, stderr: process.stderr.write };
  const route = (sink: CellSink): void => {
    const writer = (name: 'stdout' | 'stderr') =>
      ((chunk: string | Uint8Array, encoding?: unknown, cb?: unknown): boolean => {
        sink.stream(name, typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
        const done = typeof encoding === 'function' ? encoding : cb;
        if (typeof done === 'function') (done as () => void)();
        return true;
      }) as typeof process.stdout.write;
    process.stdout.write = writer('stdout');
    process.stderr.write = writer('stderr');
  };
  const restore = (): void => {
    process.stdout.write = streams.stdout;
    process.stderr.write = streams.stderr;
  };

  let queue: Promise<unknown> = Promise.resolve();
  const exposed = new Set<string>();
  async function run(code: string, sink: CellSink, cell?: CellContext): Promise<CellOutcome> {
    lastValue = null;
    diagnostics = [];
    thrown = null;
    setCurrentSink(sink);
    setCurrentCell(cell ?? null);
    tslab.jupyter.lastWriteDisplayData = (d, update) => sink.display(d, update === true);
    route(sink);
    let ok: boolean;
    try {
      ok = await executor.execute(code);
    } catch (e) {
      // tslab's own failures (not the cell's) still end the cell as an error.
      ok = false;
      thrown ??= { error: e };
    } finally {
      if (opts.keepStreams !== true) {
        restore();
        setCurrentSink(null);
      }
    }
    if (!ok) {
      if (diagnostics.length > 0) {
        const evalue = diagnostics.join('\n');
        return { status: 'error', error: { ename: 'TypeScriptError', evalue, traceback: [`TypeScriptError: ${evalue}`] } };
      }
      const t = thrown as { error: unknown } | null;
      return { status: 'error', error: t !== null ? errorOf(t.error) : { ename: 'Error', evalue: 'the cell failed', traceback: [] } };
    }
    exposeLocals(executor.locals, exposed);
    const v = lastValue as { value: unknown } | null;
    return { status: 'ok', result: v === null ? null : toMimeBundle(v.value) };
  }

  return {
    execute(code, sink, cell) {
      // One cell at a time, like a kernel's shell channel.
      const p = queue.then(() => run(code, sink, cell));
      queue = p.catch(() => undefined);
      return p;
    },
    complete(code, cursor) {
      const c = executor.complete(code, cursor);
      return { start: c.start, end: c.end, matches: c.candidates };
    },
    inspect(code, cursor) {
      const info = executor.inspect(code, cursor);
      return info === undefined || info === null ? null : tslab.inspect.printQuickInfo(info);
    },
    isComplete(code) {
      const r = tslab.converter.isCompleteCode(code);
      return r.completed ? { status: 'complete' } : { status: 'incomplete', indent: r.indent ?? '' };
    },
    interrupt: () => executor.interrupt(),
    close() {
      for (const name of exposed) delete (globalThis as Record<string, unknown>)[name];
      restore();
      setCurrentSink(null);
      setCurrentCell(null);
      executor.close();
    },
  };
}
