/**
 * The small typed-spec toolkit behind the config: each leaf knows its default, what it accepts and how
 * to say so in an error. A spec is a plain nested object of leaves, so the config type, its defaults
 * and its validation all come from one declaration (src/config/defaults.ts).
 */

export interface Leaf<T> {
  readonly kind: 'leaf';
  readonly default: T;
  /** What the leaf accepts, for error messages: 'integer >= 1', "'linear' | 'cosine'", … */
  readonly expected: string;
  accepts(v: unknown): v is T;
}

export interface Spec {
  readonly [key: string]: Leaf<unknown> | Spec;
}

/** The plain value type a spec describes (homomorphic, so field doc comments carry over). */
export type ValueOf<S> = S extends Leaf<infer T> ? T : { -readonly [K in keyof S]: ValueOf<S[K]> };

/** A deep partial of a config value: what a file, `--set` or `defineConfig` may give. */
export type DeepPartial<T> = T extends readonly unknown[] ? T : T extends object ? { [K in keyof T]?: DeepPartial<T[K]> } : T;

export function isLeaf(x: Leaf<unknown> | Spec): x is Leaf<unknown> {
  return (x as { kind?: unknown }).kind === 'leaf' && typeof (x as { accepts?: unknown }).accepts === 'function';
}

function leaf<T>(def: T, expected: string, accepts: (v: unknown) => boolean): Leaf<T> {
  const l: Leaf<T> = { kind: 'leaf', default: def, expected, accepts: (v: unknown): v is T => accepts(v) };
  if (def !== null && !l.accepts(def)) throw new Error(`spec default ${JSON.stringify(def)} is not ${expected}`);
  return l;
}

interface Range {
  min?: number;
  max?: number;
  /** Exclusive lower bound. */
  gt?: number;
  /** Exclusive upper bound. */
  lt?: number;
}

function rangeText(r: Range): string {
  const parts: string[] = [];
  if (r.gt !== undefined) parts.push(`> ${r.gt}`);
  if (r.min !== undefined) parts.push(`>= ${r.min}`);
  if (r.lt !== undefined) parts.push(`< ${r.lt}`);
  if (r.max !== undefined) parts.push(`<= ${r.max}`);
  return parts.length > 0 ? ` ${parts.join(' and ')}` : '';
}

function inRange(v: number, r: Range): boolean {
  return (
    (r.min === undefined || v >= r.min) &&
    (r.max === undefined || v <= r.max) &&
    (r.gt === undefined || v > r.gt) &&
    (r.lt === undefined || v < r.lt)
  );
}

export function num(def: number, r: Range = {}): Leaf<number> {
  return leaf(def, `a number${rangeText(r)}`, (v) => typeof v === 'number' && Number.isFinite(v) && inRange(v, r));
}

export function int(def: number, r: Range = {}): Leaf<number> {
  return leaf(def, `an integer${rangeText(r)}`, (v) => typeof v === 'number' && Number.isInteger(v) && inRange(v, r));
}

export function bool(def: boolean): Leaf<boolean> {
  return leaf(def, 'true or false', (v) => typeof v === 'boolean');
}

export function str(def: string): Leaf<string> {
  return leaf(def, 'a non-empty string', (v) => typeof v === 'string' && v.length > 0);
}

export function choice<const C extends readonly string[]>(choices: C, def: C[number]): Leaf<C[number]> {
  return leaf(def, choices.map((c) => `'${c}'`).join(' | '), (v) => typeof v === 'string' && choices.includes(v));
}

export function strList(def: string[]): Leaf<string[]> {
  return leaf(def, 'a list of strings', (v) => Array.isArray(v) && v.every((s) => typeof s === 'string' && s.length > 0));
}

/** A record with exactly these numeric keys, each accepted by `item` (e.g. split ratios). */
export function numRecord<const K extends readonly string[]>(keys: K, def: Record<K[number], number>, r: Range = {}): Leaf<Record<K[number], number>> {
  return leaf(def, `a mapping {${keys.join(', ')}} of numbers${rangeText(r)}`, (v) => {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return false;
    const o = v as Record<string, unknown>;
    const ks = Object.keys(o);
    return ks.length === keys.length && keys.every((k) => typeof o[k] === 'number' && Number.isFinite(o[k]) && inRange(o[k] as number, r));
  });
}

/** `inner` or null ("not set": the field's doc says what null means). */
export function nullable<T>(inner: Leaf<T>, def: T | null = null): Leaf<T | null> {
  return leaf<T | null>(def, `${inner.expected} or null`, (v) => v === null || inner.accepts(v));
}

/** A readable rendering of a found value for errors: type and value. */
export function describeFound(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return `a list ${truncate(JSON.stringify(v))}`;
  if (typeof v === 'object') return `a mapping ${truncate(JSON.stringify(v))}`;
  if (typeof v === 'string') return `a string ${truncate(JSON.stringify(v))}`;
  return `${typeof v} ${String(v)}`;
}

function truncate(s: string, n = 60): string {
  return s.length > n ? `${s.slice(0, n)}…` : s;
}

/** Every leaf path of a spec, dotted ('training.lr'), in declaration order. */
export function leafPaths(spec: Spec, prefix = ''): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries(spec)) {
    const p = prefix === '' ? k : `${prefix}.${k}`;
    if (isLeaf(v)) out.push(p);
    else out.push(...leafPaths(v, p));
  }
  return out;
}

/** The defaults object of a spec (fresh copies, safe to mutate). */
export function defaultsOf<S extends Spec>(spec: S): ValueOf<S> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(spec)) out[k] = isLeaf(v) ? structuredClone(v.default) : defaultsOf(v);
  return out as ValueOf<S>;
}
