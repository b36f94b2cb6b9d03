/**
 * The channel between display helpers and whatever runs the cell (the Jupyter kernel, the in-process
 * runner, or nothing in a plain script). A process-wide slot keyed by a global symbol, so helpers
 * work whichever copy of this module a cell reached.
 */
import { inspect } from 'node:util';

/** A Jupyter MIME bundle: mime type → content (strings, or JSON for `application/*+json`). */
export type MimeBundle = Record<string, string | Record<string, unknown>>;

/** A display_data / update_display_data message's content. */
export interface DisplayMessage {
  data: MimeBundle;
  metadata: Record<string, unknown>;
  transient?: { display_id?: string };
}

/** Where a running cell's outputs go. */
export interface CellSink {
  stream(name: 'stdout' | 'stderr', text: string): void;
  /** update=true: replace the outputs that carry `transient.display_id` (update_display_data). */
  display(msg: DisplayMessage, update: boolean): void;
  clearOutput?(wait: boolean): void;
}

const SINK = Symbol.for('clinilora.notebook.sink');
type Global = typeof globalThis & { [SINK]?: CellSink | null };

export function setCurrentSink(sink: CellSink | null): void {
  (globalThis as Global)[SINK] = sink;
}

/** The running cell's sink, or null outside a notebook. */
export function currentSink(): CellSink | null {
  return (globalThis as Global)[SINK] ?? null;
}

/** Objects that know how to show themselves (tables, figures, diagrams) implement this. */
export const MIME_BUNDLE = Symbol.for('clinilora.mimeBundle');
export interface Displayable {
  [MIME_BUNDLE](): MimeBundle;
}

export function isDisplayable(v: unknown): v is Displayable {
  return v !== null && typeof v === 'object' && typeof (v as Partial<Displayable>)[MIME_BUNDLE] === 'function';
}

/** A value's bundle: its own for a Displayable, else `text/plain` as Node's inspect prints it. */
export function toMimeBundle(value: unknown): MimeBundle {
  if (isDisplayable(value)) return value[MIME_BUNDLE]();
  if (typeof value === 'string') return { 'text/plain': value };
  return { 'text/plain': inspect(value, { depth: 4, colors: false, maxArrayLength: 50, breakLength: 100 }) };
}
