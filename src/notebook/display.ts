/**
 * Showing things in a notebook. Every helper returns a `Rendered` value: the last expression of a
 * cell renders it (execute_result), `.show()` displays it at once and returns a handle whose
 * `update()` replaces that output in place (display_id / update_display_data, how the live loss curve
 * redraws). Every bundle carries `text/plain` too, so a saved notebook stays readable where HTML or
 * scripts are not rendered (GitHub, untrusted notebooks, a terminal). Outside a notebook, `show()`
 * prints the text.
 */
import { currentSink, isDisplayable, MIME_BUNDLE, toMimeBundle, type Displayable, type MimeBundle } from './display-channel.ts';

export interface DisplayHandle {
  /** The display_id (Jupyter's transient id) of this output. */
  readonly id: string;
  /** Replaces the output in place; outside a notebook, does nothing. */
  update(value: unknown): void;
}

let nextId = 0;
const newDisplayId = (): string => `clinilora-${process.pid}-${++nextId}`;

/** Displays any value (a Rendered, or anything as Node prints it) and returns a handle to update it. */
export function display(value: unknown, opts: { id?: string } = {}): DisplayHandle {
  const id = opts.id ?? newDisplayId();
  const bundle = toMimeBundle(value);
  const sink = currentSink();
  if (sink === null) process.stdout.write(`${String(bundle['text/plain'] ?? '')}\n`);
  else sink.display({ data: bundle, metadata: {}, transient: { display_id: id } }, false);
  return {
    id,
    update(next: unknown): void {
      const s = currentSink();
      if (s !== null) s.display({ data: toMimeBundle(next), metadata: {}, transient: { display_id: id } }, true);
    },
  };
}

/** Clears the current cell's output (wait=true: when the next output arrives). */
export function clearOutput(wait = false): void {
  currentSink()?.clearOutput?.(wait);
}

/** A displayable MIME bundle. */
export class Rendered implements Displayable {
  constructor(readonly bundle: MimeBundle) {
    if (typeof bundle['text/plain'] !== 'string') throw new TypeError('a rendered output needs a text/plain form');
  }

  [MIME_BUNDLE](): MimeBundle {
    return this.bundle;
  }

  /** The plain-text form (what a terminal or a saved notebook without HTML shows). */
  get text(): string {
    return this.bundle['text/plain'] as string;
  }

  show(opts: { id?: string } = {}): DisplayHandle {
    return display(this, opts);
  }

  toString(): string {
    return this.text;
  }
}

const stripTags = (s: string): string =>
  s
    .replace(/<(script|style)[\s\S]*?<\/\1>/gi, '')
    .replace(/<br\s*\/?>|<\/(p|div|tr|li|h\d)>/gi, '\n')
    .replace(/<[^>]+>/g, '')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&amp;/g, '&')
    .replace(/\n{3,}/g, '\n\n')
    .trim();

export const escapeHtml = (s: string): string => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

/** HTML, with its text (default: the HTML with tags stripped). */
export function html(source: string, text?: string): Rendered {
  return new Rendered({ 'text/html': source, 'text/plain': text ?? stripTags(source) });
}

export function markdown(source: string): Rendered {
  return new Rendered({ 'text/markdown': source, 'text/plain': source });
}

/** An SVG image with a text description (what a reader without images sees). */
export function svg(source: string, text: string): Rendered {
  return new Rendered({ 'image/svg+xml': source, 'text/plain': text });
}

export function text(s: string): Rendered {
  return new Rendered({ 'text/plain': s });
}

export { isDisplayable, MIME_BUNDLE, type Displayable, type MimeBundle };
