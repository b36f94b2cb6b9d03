/**
 * PNG export of a report's figures through headless Chromium (FACTS: Debian `chromium` driven by
 * playwright-core, flags --headless --no-sandbox --disable-gpu --disable-background-networking; one
 * page for the whole batch). Both are optional: when either is missing the error says which and how
 * to install it — the HTML report is complete without them.
 *
 * The page is the written report itself (file:// URL, plotly inline, so nothing is fetched); each
 * figure is rendered by plotly's own `Plotly.toImage`, not a screenshot, so sizes are exact.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { CliniloraError } from '../errors.ts';
import { writeFileAtomic } from '../util/atomic.ts';
import type { Figure } from './figures.ts';

/** The playwright-core version known to drive Debian 12's chromium (install it exactly). */
export const PLAYWRIGHT_CORE_VERSION = '1.65.1';
export const CHROMIUM_CANDIDATES = ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/lib/chromium/chromium'] as const;
export const CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] as const;

/**
 * Where Chromium is: `CLINILORA_CHROMIUM` when set (and then only there), else the Debian paths.
 * `path` is null when none exists; `tried` lists where it looked.
 */
export function findChromium(env: NodeJS.ProcessEnv = process.env): { path: string | null; tried: string[] } {
  const forced = env.CLINILORA_CHROMIUM;
  const tried = forced !== undefined && forced !== '' ? [forced] : [...CHROMIUM_CANDIDATES];
  return { path: tried.find((p) => existsSync(p)) ?? null, tried };
}

/** The few playwright-core calls used here (it is an optional dependency without types installed). */
interface Page {
  goto(url: string, opts?: { waitUntil?: string }): Promise<unknown>;
  evaluate(expression: string): Promise<unknown>;
}
interface Browser {
  newPage(opts?: { viewport?: { width: number; height: number } }): Promise<Page>;
  close(): Promise<void>;
}
interface PlaywrightCore {
  chromium: { launch(opts: { executablePath: string; headless: boolean; args: string[] }): Promise<Browser> };
}

async function loadPlaywright(): Promise<PlaywrightCore> {
  const name = 'playwright-core'; // a variable: the type checker must not require the package
  try {
    return (await import(name)) as PlaywrightCore;
  } catch {
    throw new CliniloraError('E_MISSING', 'PNG export needs playwright-core, which is not installed', {
      hint: `npm install playwright-core@${PLAYWRIGHT_CORE_VERSION} (the HTML report was written; only the PNGs are missing)`,
    });
  }
}

export interface PngOptions {
  /** Chromium binary (default: findChromium()). */
  chromium?: string;
  width?: number;
  env?: NodeJS.ProcessEnv;
}

/**
 * Renders each figure of the report page `htmlFile` to `<dir>/<figure id>.png`; returns the files.
 * Throws CliniloraError E_MISSING (before touching `dir`) when Chromium or playwright-core is missing.
 */
export async function exportPngs(htmlFile: string, figures: readonly Figure[], dir: string, opts: PngOptions = {}): Promise<string[]> {
  const found = opts.chromium !== undefined ? { path: existsSync(opts.chromium) ? opts.chromium : null, tried: [opts.chromium] } : findChromium(opts.env);
  if (found.path === null) {
    throw new CliniloraError('E_MISSING', 'PNG export needs headless Chromium, which is not installed', {
      expected: 'a Chromium executable',
      found: `nothing at ${found.tried.join(', ')}`,
      hint: `install Debian's chromium (apt-get install chromium) and playwright-core@${PLAYWRIGHT_CORE_VERSION}, or set CLINILORA_CHROMIUM; the HTML report was written, only the PNGs are missing`,
    });
  }
  const pw = await loadPlaywright();
  const width = opts.width ?? 1000;
  const browser = await pw.chromium.launch({ executablePath: found.path, headless: true, args: [...CHROMIUM_FLAGS] });
  const files: string[] = [];
  try {
    const page = await browser.newPage({ viewport: { width: width + 100, height: 800 } });
    await page.goto(pathToFileURL(resolve(htmlFile)).href, { waitUntil: 'load' });
    await page.evaluate('window.cliniloraPlots');
    for (const f of figures) {
      const height = typeof f.layout.height === 'number' ? f.layout.height : 450;
      const url = await page.evaluate(`Plotly.toImage(document.getElementById(${JSON.stringify(f.id)}), { format: 'png', width: ${width}, height: ${height} })`);
      if (typeof url !== 'string' || !url.startsWith('data:image/png;base64,')) {
        throw new CliniloraError('E_IO', `Chromium returned no PNG for figure '${f.id}'`, { file: htmlFile, found: String(url).slice(0, 40) });
      }
      const file = join(resolve(dir), `${f.id}.png`);
      writeFileAtomic(file, Buffer.from(url.slice(url.indexOf(',') + 1), 'base64'));
      files.push(file);
    }
  } finally {
    await browser.close();
  }
  return files;
}
