/**
 * The split manifest: which sample IDs are in which split, the sha256 of every source file, what was
 * dropped and why, and the manifest's own sha256, so a run record can say exactly what it trained on
 * and a reviewer can verify the dataset on disk is that one.
 */
import { readFileSync, existsSync, writeFileSync as writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CliniloraError } from '../errors.ts';
import { writeDirAtomic } from '../util/atomic.ts';
import { SPLIT_NAMES, sampleId, sha256Hex, type Sample, type SplitName, type TaskName } from './sample.ts';
import { assertNoLeakage, type SplitRatios, type Splits } from './split.ts';

export const MANIFEST_SCHEMA = 'clinilora.split-manifest';
export const MANIFEST_VERSION = 1;

export interface SourceFile {
  /** Path relative to the package root (or as given by the user). */
  path: string;
  bytes: number;
  sha256: string;
}

export interface SplitManifest {
  schema: typeof MANIFEST_SCHEMA;
  version: number;
  task: TaskName;
  seed: number;
  ratios: SplitRatios;
  generator: { name: string; version: string };
  /** Task build options (n, incomplete variants, include_time…), as given. */
  options: Record<string, unknown>;
  sources: SourceFile[];
  counts: Record<SplitName, number>;
  /** Records dropped while building, by reason. */
  dropped: Record<string, number>;
  splits: Record<SplitName, string[]>;
  /** sha256 of the canonical JSON of every other field. */
  sha256: string;
}

export function sourceFile(path: string, displayPath = path): SourceFile {
  const data = readFileSync(path);
  return { path: displayPath, bytes: data.byteLength, sha256: sha256Hex(data) };
}

/** JSON with object keys sorted, so the hash does not depend on key order. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) =>
    v !== null && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}

function manifestHash(m: Omit<SplitManifest, 'sha256'>): string {
  return sha256Hex(canonicalJson(m));
}

export function buildManifest(
  parts: Omit<SplitManifest, 'schema' | 'version' | 'sha256' | 'counts' | 'splits'>,
  splits: Splits,
): SplitManifest {
  const body: Omit<SplitManifest, 'sha256'> = {
    schema: MANIFEST_SCHEMA,
    version: MANIFEST_VERSION,
    ...parts,
    counts: { train: splits.train.length, validation: splits.validation.length, test: splits.test.length },
    splits: { train: splits.train.map((s) => s.id), validation: splits.validation.map((s) => s.id), test: splits.test.map((s) => s.id) },
  };
  return { ...body, sha256: manifestHash(body) };
}

/** Checks the manifest's own sha256 and schema; throws naming the file and field. */
export function verifyManifest(m: SplitManifest, file = 'manifest.json'): void {
  if (m.schema !== MANIFEST_SCHEMA) {
    throw new CliniloraError('E_FORMAT', 'not a split manifest', { file, field: 'schema', expected: MANIFEST_SCHEMA, found: String(m.schema) });
  }
  if (m.version > MANIFEST_VERSION) {
    throw new CliniloraError('E_FORMAT', 'manifest from a newer clinilora', {
      file,
      field: 'version',
      expected: `<= ${MANIFEST_VERSION}`,
      found: String(m.version),
      hint: 'upgrade clinilora',
    });
  }
  const { sha256, ...body } = m;
  const actual = manifestHash(body);
  if (actual !== sha256) {
    throw new CliniloraError('E_FORMAT', 'manifest does not match its own sha256 (edited or corrupt)', {
      file,
      field: 'sha256',
      expected: sha256,
      found: actual,
    });
  }
}

/**
 * Writes `<dir>/{train,validation,test}.jsonl` and `manifest.json` as one atomic directory, after
 * the leakage check.
 */
export function writeDataset(dir: string, splits: Splits, manifest: SplitManifest): void {
  assertNoLeakage(splits, dir);
  writeDirAtomic(dir, (tmp) => {
    for (const name of SPLIT_NAMES) {
      const lines = splits[name].map((s) => JSON.stringify(s)).join('\n');
      writeFileSync(join(tmp, `${name}.jsonl`), lines.length > 0 ? `${lines}\n` : '');
    }
    writeFileSync(join(tmp, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  });
}


export interface Dataset {
  dir: string;
  manifest: SplitManifest;
  splits: Splits;
}

/**
 * Reads a dataset directory, verifying the manifest's sha256, every sample's ID against its content,
 * and that the files hold exactly the manifest's IDs in order.
 */
export function loadDataset(dir: string): Dataset {
  const mfile = join(dir, 'manifest.json');
  if (!existsSync(mfile)) {
    throw new CliniloraError('E_MISSING', 'dataset has no manifest', { file: mfile, hint: 'build it with `clinilora data build <task>`' });
  }
  const manifest = parseJson(readFileSync(mfile, 'utf8'), mfile) as SplitManifest;
  verifyManifest(manifest, mfile);
  const splits: Splits = { train: [], validation: [], test: [] };
  for (const name of SPLIT_NAMES) {
    const file = join(dir, `${name}.jsonl`);
    const text = readFileSync(file, 'utf8');
    const lines = text.split('\n');
    lines.forEach((line, i) => {
      if (line.trim() === '') return;
      const s = parseJson(line, file, i + 1) as Sample;
      const id = sampleId(s.system, s.user, s.answer);
      if (id !== s.id) {
        throw new CliniloraError('E_FORMAT', 'sample ID does not match its content', { file, line: i + 1, field: 'id', expected: id, found: s.id });
      }
      splits[name].push(s);
    });
    const ids = splits[name].map((s) => s.id);
    const want = manifest.splits[name];
    if (ids.length !== want.length || ids.some((id, i) => id !== want[i])) {
      const at = ids.findIndex((id, i) => id !== want[i]);
      throw new CliniloraError('E_FORMAT', `split '${name}' does not match the manifest`, {
        file,
        line: at >= 0 ? at + 1 : undefined,
        expected: `${want.length} samples as listed in manifest.json`,
        found: `${ids.length} samples${at >= 0 ? `, first difference at sample ${at + 1}` : ''}`,
      });
    }
  }
  return { dir, manifest, splits };
}

function parseJson(text: string, file: string, line?: number): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new CliniloraError('E_FORMAT', `invalid JSON: ${(e as Error).message}`, { file, line });
  }
}
