/**
 * PNG export of a report's figures through headless Chromium (Debian package `chromium`), driven
 * directly over the DevTools protocol on a pipe (`--remote-debugging-pipe`: JSON messages ending in
 * NUL on fds 3 and 4), with no browser-automation package: one browser, one page for the whole batch.
 * Chromium is optional: without it the error names the Debian package, and nothing is written.
 *
 * The page is the written report itself (file:// URL, plotly inline, so nothing is fetched); each
 * figure is rendered by plotly's own `Plotly.toImage`, not a screenshot, so sizes are exact. All PNGs
 * are rendered in memory and checked before the first file is written.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { CliniloraError } from '../errors.ts';
import { writeFileAtomic } from '../util/atomic.ts';
import type { Figure } from './figures.ts';

export const CHROMIUM_PACKAGE = 'chromium';
export const CHROMIUM_CANDIDATES = ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/lib/chromium/chromium'] as const;
export const CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run', '--no-default-browser-check', '--hide-scrollbars'] as const;
const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/**
 * Where Chromium is: `CLINILORA_CHROMIUM` when set (and then only there), else the Debian paths.
 * `path` is null when none exists; `tried` lists where it looked.
 */
export function findChromium(env: NodeJS.ProcessEnv = process.env): { path: string | null; tried: string[] } {
  const forced = env.CLINILORA_CHROMIUM;
  const tried = forced !== undefined && forced !== '' ? [forced] : [...CHROMIUM_CANDIDATES];
  return { path: tried.find((p) => existsSync(p)) ?? null, tried };
}

/** The E_MISSING error for an absent Chromium; `after` says what was (not) written. */
export function chromiumMissing(tried: readonly string[], after: string): CliniloraError {
  return new CliniloraError('E_MISSING', 'PNG export needs headless Chromium, which is not installed', {
    expected: 'a Chromium executable',
    found: `nothing at ${tried.join(', ')}`,
    hint: `install Debian's ${CHROMIUM_PACKAGE} package (apt-get install ${CHROMIUM_PACKAGE}) or set CLINILORA_CHROMIUM to a Chromium binary; ${after}`,
  });
}

/** A page in a headless Chromium: evaluate JavaScript (promises awaited, results by value). */
export interface ChromiumPage {
  goto(url: string): Promise<void>;
  evaluate<T = unknown>(expression: string): Promise<T>;
}

interface Message {
  id?: number;
  method?: string;
  sessionId?: string;
  result?: Record<string, unknown>;
  error?: { message: string };
}

/** The DevTools protocol over the pipe: commands by id, events by method. */
class Cdp {
  private buf = Buffer.alloc(0);
  private next = 0;
  private readonly waiting = new Map<number, { method: string; ok: (r: Record<string, unknown>) => void; fail: (e: Error) => void }>();
  private readonly listeners = new Set<(m: Message) => void>();
  private closed: Error | null = null;
  private onFail: (e: Error) => void = () => {};
  /** Rejects when the browser is gone (a waiter for an event must not wait forever). */
  private readonly dead = new Promise<never>((_, fail) => (this.onFail = fail));

  constructor(private readonly out: Writable, input: Readable) {
    input.on('data', (chunk: Buffer) => {
      this.buf = Buffer.concat([this.buf, chunk]);
      for (let i = this.buf.indexOf(0); i >= 0; i = this.buf.indexOf(0)) {
        const m = JSON.parse(this.buf.subarray(0, i).toString('utf8')) as Message;
        this.buf = this.buf.subarray(i + 1);
        this.dispatch(m);
      }
    });
  }

  private dispatch(m: Message): void {
    if (m.id === undefined) {
      for (const l of this.listeners) l(m);
      return;
    }
    const w = this.waiting.get(m.id);
    this.waiting.delete(m.id);
    if (w === undefined) return;
    if (m.error !== undefined) w.fail(new Error(`DevTools ${w.method}: ${m.error.message}`));
    else w.ok(m.result ?? {});
  }

  send(method: string, params: Record<string, unknown> = {}, sessionId?: string): Promise<Record<string, unknown>> {
    if (this.closed !== null) return Promise.reject(this.closed);
    const id = ++this.next;
    return new Promise((ok, fail) => {
      this.waiting.set(id, { method, ok, fail });
      this.out.write(`${JSON.stringify({ id, method, params, ...(sessionId !== undefined ? { sessionId } : {}) })}\0`);
    });
  }

  /** Resolves on the first event `method` (of `sessionId`). */
  once(method: string, sessionId: string): Promise<void> {
    const event = new Promise<void>((ok) => {
      const l = (m: Message): void => {
        if (m.method === method && m.sessionId === sessionId) {
          this.listeners.delete(l);
          ok();
        }
      };
      this.listeners.add(l);
    });
    return Promise.race([event, this.dead]);
  }

  fail(e: Error): void {
    if (this.closed !== null) return;
    this.closed = e;
    this.dead.catch(() => {}); // only awaited through once()
    this.onFail(e);
    for (const w of this.waiting.values()) w.fail(e);
    this.waiting.clear();
  }
}

export interface ChromiumOptions {
  /** Chromium binary (default: findChromium()). */
  chromium?: string;
  env?: NodeJS.ProcessEnv;
  /** Whole-session limit in ms (default 120 000): the browser is killed past it. */
  timeoutMs?: number;
  /** What the missing-Chromium error says was written (default: nothing). */
  missingNote?: string;
}

/**
 * Starts headless Chromium with a fresh profile, gives `fn` one page, and always ends the browser
 * (and removes its profile), also on error or timeout.
 */
export async function withChromium<T>(fn: (page: ChromiumPage) => Promise<T>, opts: ChromiumOptions = {}): Promise<T> {
  const found = opts.chromium !== undefined ? { path: existsSync(opts.chromium) ? opts.chromium : null, tried: [opts.chromium] } : findChromium(opts.env);
  if (found.path === null) throw chromiumMissing(found.tried, opts.missingNote ?? 'nothing was written');
  const profile = mkdtempSync(join(tmpdir(), 'clinilora-chromium-'));
  const child: ChildProcess = spawn(found.path, [...CHROMIUM_FLAGS, '--remote-debugging-pipe', `--user-data-dir=${profile}`, 'about:blank'], {
    stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => void (stderr = (stderr + d.toString('utf8')).slice(-4000)));
  const cdp = new Cdp(child.stdio[3] as Writable, child.stdio[4] as Readable);
  const died = (why: string): CliniloraError =>
    new CliniloraError('E_IO', `headless Chromium ${why}`, { file: found.path!, hint: `its last output: ${stderr.trim().split('\n').slice(-3).join(' | ') || '(none)'}` });
  child.on('error', (e) => cdp.fail(died(`could not start: ${e.message}`)));
  child.on('exit', (code, signal) => cdp.fail(died(`exited (${signal ?? `code ${code}`})`)));
  (child.stdio[3] as Writable).on('error', () => {}); // EPIPE after an early exit is reported by 'exit'
  const timer = setTimeout(() => {
    cdp.fail(died(`took longer than ${opts.timeoutMs ?? 120_000} ms`));
    child.kill('SIGKILL');
  }, opts.timeoutMs ?? 120_000);
  try {
    const { targetId } = (await cdp.send('Target.createTarget', { url: 'about:blank' })) as { targetId: string };
    const { sessionId } = (await cdp.send('Target.attachToTarget', { targetId, flatten: true })) as { sessionId: string };
    await cdp.send('Page.enable', {}, sessionId);
    const page: ChromiumPage = {
      async goto(url) {
        const loaded = cdp.once('Page.loadEventFired', sessionId);
        const r = (await cdp.send('Page.navigate', { url }, sessionId)) as { errorText?: string };
        if (r.errorText !== undefined) throw new CliniloraError('E_IO', `Chromium could not open ${url}: ${r.errorText}`);
        await loaded;
      },
      async evaluate<T>(expression: string): Promise<T> {
        const r = (await cdp.send('Runtime.evaluate', { expression, awaitPromise: true, returnByValue: true }, sessionId)) as {
          result?: { value?: unknown };
          exceptionDetails?: { text?: string; exception?: { description?: string } };
        };
        if (r.exceptionDetails !== undefined) {
          throw new CliniloraError('E_IO', `JavaScript error in Chromium: ${r.exceptionDetails.exception?.description ?? r.exceptionDetails.text ?? 'unknown'}`);
        }
        return r.result?.value as T;
      },
    };
    const out = await fn(page);
    await cdp.send('Browser.close').catch(() => {});
    return out;
  } finally {
    clearTimeout(timer);
    if (child.exitCode === null && child.signalCode === null) {
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await gone;
    }
    // Chromium's helper processes can still be writing into the profile just after the browser exits
    // (ENOTEMPTY while removing): retry, and never let a leftover temp directory replace the result or
    // the real error.
    try {
      rmSync(profile, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
    } catch {
      // left in the system temp directory
    }
  }
}

export interface PngOptions extends ChromiumOptions {
  /** Image width in CSS pixels (default 1000); the height is the figure's layout.height (else 450). */
  width?: number;
}

/** Width and height from a PNG's IHDR chunk; null when `png` is not a PNG. */
export function pngSize(png: Uint8Array): { width: number; height: number } | null {
  const b = Buffer.from(png.buffer, png.byteOffset, png.byteLength);
  if (b.length < 24 || !b.subarray(0, 8).equals(PNG_SIGNATURE) || b.toString('latin1', 12, 16) !== 'IHDR') return null;
  return { width: b.readUInt32BE(16), height: b.readUInt32BE(20) };
}

/**
 * Renders each figure of the report page `htmlFile` to `<dir>/<figure id>.png`; returns the files.
 * Throws CliniloraError E_MISSING (before touching `dir`) when Chromium is missing; on any failure
 * no PNG is written.
 */
export async function exportPngs(htmlFile: string, figures: readonly Figure[], dir: string, opts: PngOptions = {}): Promise<string[]> {
  const width = opts.width ?? 1000;
  const images = await withChromium(
    async (page) => {
      await page.goto(pathToFileURL(resolve(htmlFile)).href);
      await page.evaluate('window.cliniloraPlots.then(() => true)'); // the plots' divs cannot travel by value
      const out: { id: string; png: Buffer }[] = [];
      for (const f of figures) {
        const height = typeof f.layout.height === 'number' ? f.layout.height : 450;
        const url = await page.evaluate<unknown>(`Plotly.toImage(document.getElementById(${JSON.stringify(f.id)}), { format: 'png', width: ${width}, height: ${height} })`);
        const png = typeof url === 'string' && url.startsWith('data:image/png;base64,') ? Buffer.from(url.slice(url.indexOf(',') + 1), 'base64') : null;
        if (png === null || pngSize(png) === null) {
          throw new CliniloraError('E_IO', `Chromium returned no PNG for figure '${f.id}'`, { file: htmlFile, found: String(url).slice(0, 40) });
        }
        out.push({ id: f.id, png });
      }
      return out;
    },
    { ...opts, missingNote: opts.missingNote ?? 'the HTML report was written, only the PNGs are missing' },
  );
  return images.map(({ id, png }) => {
    const file = join(resolve(dir), `${id}.png`);
    writeFileAtomic(file, png);
    return file;
  });
}
