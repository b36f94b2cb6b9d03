/**
 * Jupyter notebook files (nbformat 4): reading them with errors that name the file and field, and
 * papermill's parameter convention — values given on the command line go into a new cell tagged
 * `injected-parameters` right after the cell tagged `parameters` (which keeps the defaults), so the
 * executed notebook shows both.
 */
import { readFileSync } from 'node:fs';
import { CliniloraError } from '../errors.ts';
import { writeFileAtomic } from '../util/atomic.ts';

export type NotebookOutput =
  | { output_type: 'stream'; name: 'stdout' | 'stderr'; text: string }
  | { output_type: 'display_data'; data: Record<string, unknown>; metadata: Record<string, unknown> }
  | { output_type: 'execute_result'; data: Record<string, unknown>; metadata: Record<string, unknown>; execution_count: number | null }
  | { output_type: 'error'; ename: string; evalue: string; traceback: string[] };

export interface NotebookCell {
  cell_type: 'code' | 'markdown' | 'raw';
  id?: string;
  source: string | string[];
  metadata: { tags?: string[]; [key: string]: unknown };
  outputs?: NotebookOutput[];
  execution_count?: number | null;
  attachments?: Record<string, unknown>;
}

export interface Notebook {
  nbformat: number;
  nbformat_minor: number;
  metadata: Record<string, unknown>;
  cells: NotebookCell[];
}

export const PARAMETERS_TAG = 'parameters';
export const INJECTED_TAG = 'injected-parameters';

/** The kernelspec and language metadata a clinilora notebook carries. */
export const NOTEBOOK_METADATA = {
  kernelspec: { name: 'clinilora', display_name: 'clinilora (TypeScript)', language: 'typescript' },
  language_info: { name: 'typescript', file_extension: '.ts', mimetype: 'text/typescript' },
};

export function cellSource(cell: NotebookCell): string {
  return Array.isArray(cell.source) ? cell.source.join('') : cell.source;
}

/** nbformat stores multi-line strings as lists of lines (each but the last keeping its "\n"). */
export function toLines(s: string): string[] {
  return s === '' ? [] : s.split(/(?<=\n)/);
}

export function readNotebook(file: string): Notebook {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new CliniloraError('E_IO', `cannot read the notebook: ${(e as Error).message}`, { file });
  }
  let nb: unknown;
  try {
    nb = JSON.parse(text);
  } catch (e) {
    throw new CliniloraError('E_FORMAT', `not a notebook (invalid JSON: ${(e as Error).message})`, { file, expected: 'an .ipynb JSON document' });
  }
  const o = nb as Partial<Notebook> | null;
  if (o === null || typeof o !== 'object' || Array.isArray(o)) throw new CliniloraError('E_FORMAT', 'not a notebook', { file, expected: 'a JSON object', found: Array.isArray(o) ? 'a list' : typeof o });
  if (o.nbformat !== 4) throw new CliniloraError('E_FORMAT', 'unsupported notebook format', { file, field: 'nbformat', expected: '4', found: String(o.nbformat) });
  if (!Array.isArray(o.cells)) throw new CliniloraError('E_FORMAT', 'a notebook needs a list of cells', { file, field: 'cells', expected: 'a list', found: typeof o.cells });
  o.cells.forEach((c, i) => {
    if (c === null || typeof c !== 'object' || !['code', 'markdown', 'raw'].includes(c.cell_type)) {
      throw new CliniloraError('E_FORMAT', 'bad cell', { file, field: `cells[${i}].cell_type`, expected: "'code' | 'markdown' | 'raw'", found: String((c as Partial<NotebookCell> | null)?.cell_type) });
    }
    if (typeof c.source !== 'string' && !Array.isArray(c.source)) throw new CliniloraError('E_FORMAT', 'bad cell', { file, field: `cells[${i}].source`, expected: 'a string or a list of strings', found: typeof c.source });
    c.metadata ??= {};
  });
  return { nbformat: 4, nbformat_minor: o.nbformat_minor ?? 5, metadata: o.metadata ?? {}, cells: o.cells };
}

export function writeNotebook(file: string, nb: Notebook): void {
  writeFileAtomic(file, JSON.stringify(nb, null, 1) + '\n');
}

/**
 * `key=value` items (`-p`) as parameters. A value that parses as JSON is that JSON (numbers, true,
 * false, null, lists, objects, "quoted strings"); anything else is a plain string.
 */
export function parseParameters(items: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const item of items) {
    const eq = item.indexOf('=');
    const key = eq > 0 ? item.slice(0, eq).trim() : '';
    if (!/^[A-Za-z_$][\w$]*$/.test(key)) {
      throw new CliniloraError('E_ARG', `bad parameter '${item}'`, { field: '-p', expected: 'key=value with an identifier key', found: item });
    }
    const raw = item.slice(eq + 1);
    let value: unknown = raw;
    try {
      value = JSON.parse(raw);
    } catch {
      // a plain string
    }
    out[key] = value;
  }
  return out;
}

/** Names the parameters cell declares (`const|let|var name` at the start of a line). */
export function declaredNames(source: string): string[] {
  const names: string[] = [];
  for (const m of source.matchAll(/^\s*(?:export\s+)?(?:const|let|var)\s+([A-Za-z_$][\w$]*)/gm)) names.push(m[1]!);
  return names;
}

/** The TypeScript of the injected cell. */
export function parametersSource(params: Record<string, unknown>): string {
  const lines = ['// Parameters injected by `clinilora notebooks run`'];
  for (const [k, v] of Object.entries(params)) lines.push(`const ${k} = ${JSON.stringify(v)};`);
  return lines.join('\n');
}

export interface Injection {
  notebook: Notebook;
  /** Index of the injected cell in the new notebook, or null when no parameters were given. */
  injectedIndex: number | null;
  /** For each cell of the new notebook, its index in the given one (null for the injected cell). */
  sourceIndex: (number | null)[];
}

/**
 * A copy of `nb` with `params` injected after the cell tagged `parameters` (an earlier injected cell
 * is replaced). Unknown names are an error: a typo must not silently run the defaults.
 */
export function injectParameters(nb: Notebook, params: Record<string, unknown>, file = '<notebook>'): Injection {
  const kept = nb.cells.map((c, i) => [c, i] as const).filter(([c]) => !(c.metadata.tags ?? []).includes(INJECTED_TAG));
  const cells = kept.map(([c]) => c);
  const sourceIndex: (number | null)[] = kept.map(([, i]) => i);
  const copy: Notebook = { ...nb, cells };
  if (Object.keys(params).length === 0) return { notebook: copy, injectedIndex: null, sourceIndex };
  const at = cells.findIndex((c) => c.cell_type === 'code' && (c.metadata.tags ?? []).includes(PARAMETERS_TAG));
  if (at < 0) {
    throw new CliniloraError('E_ARG', 'the notebook has no cell tagged "parameters", so it takes no parameters', {
      file,
      hint: 'tag the cell holding the defaults with "parameters" (papermill convention)',
    });
  }
  const declared = declaredNames(cellSource(cells[at]!));
  for (const k of Object.keys(params)) {
    if (!declared.includes(k)) {
      throw new CliniloraError('E_ARG', `unknown parameter '${k}'`, { file, field: k, expected: declared.length > 0 ? `one of ${declared.join(', ')}` : 'a name declared in the parameters cell', found: k });
    }
  }
  const injected: NotebookCell = {
    cell_type: 'code',
    id: 'injected-parameters',
    source: toLines(parametersSource(params)),
    metadata: { tags: [INJECTED_TAG] },
    outputs: [],
    execution_count: null,
  };
  copy.cells = [...cells.slice(0, at + 1), injected, ...cells.slice(at + 1)];
  sourceIndex.splice(at + 1, 0, null);
  return { notebook: copy, injectedIndex: at + 1, sourceIndex };
}
