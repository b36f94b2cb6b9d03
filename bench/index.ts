/**
 * `npm run bench [-- --only <section>]`: runs every section module `bench/<name>.ts` (each exports
 * `async function run(): Promise<Array<Record<string, number | string>>>`) and prints one JSON object
 * per line to stdout, `{"section": name, ...metrics}`; progress goes to stderr. A failing section
 * prints `{"section": name, "error": message}` and makes the exit code 1; the others still run.
 */
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { initBackend } from '../src/backend/index.ts';

type Row = Record<string, number | string>;
interface Section {
  run(): Promise<Row[]>;
}

const benchDir = path.dirname(fileURLToPath(import.meta.url));

function sections(): string[] {
  return readdirSync(benchDir)
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts') && f !== 'index.ts' && !f.startsWith('_'))
    .map((f) => f.slice(0, -'.ts'.length))
    .sort();
}

function log(msg: string): void {
  process.stderr.write(`[bench] ${msg}\n`);
}

async function main(): Promise<number> {
  let only: string[] | undefined;
  try {
    const { values } = parseArgs({ options: { only: { type: 'string', multiple: true } }, strict: true });
    only = values.only?.map((s) => s.replace(/\.ts$/, ''));
  } catch (e) {
    log(`${(e as Error).message}\nusage: npm run bench [-- --only <section> ...]`);
    return 2;
  }
  const all = sections();
  const unknown = (only ?? []).filter((s) => !all.includes(s));
  if (unknown.length > 0) {
    log(`unknown section ${unknown.map((s) => `'${s}'`).join(', ')}; sections: ${all.join(', ')}`);
    return 2;
  }
  // The default backend for sections that do not pick one (CLINILORA_BACKEND / _THREADS apply).
  let be;
  try {
    be = await initBackend();
  } catch (e) {
    log((e as Error).message);
    return 2;
  }
  log(`backend ${be.name}, ${be.threads} thread(s); sections: ${(only ?? all).join(', ')}`);
  let code = 0;
  for (const name of only ?? all) {
    const t0 = performance.now();
    log(`${name}: running`);
    try {
      const mod = (await import(pathToFileURL(path.join(benchDir, `${name}.ts`)).href)) as Partial<Section>;
      if (typeof mod.run !== 'function') throw new Error(`bench/${name}.ts does not export run()`);
      const rows = await mod.run();
      for (const row of rows) process.stdout.write(JSON.stringify({ section: name, ...row }) + '\n');
      log(`${name}: ${rows.length} row(s) in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    } catch (e) {
      code = 1;
      log(`${name}: failed\n${(e as Error)?.stack ?? String(e)}`);
      process.stdout.write(JSON.stringify({ section: name, error: String((e as Error)?.message ?? e) }) + '\n');
    }
  }
  return code;
}

// Exit explicitly: a section that leaves a handle open must not hang the run (stdout to a pipe or a
// file is synchronous on Linux, so nothing printed is lost).
process.exit(await main());
