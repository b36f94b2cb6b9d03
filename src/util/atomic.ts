import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { dirname, basename, join } from 'node:path';

/** A temporary sibling name of `path` that .gitignore covers (`*.tmp-*`). */
export function tempPathFor(path: string): string {
  return join(dirname(path), `.${basename(path)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
}

/**
 * Writes `chunks` to `path` atomically: a temporary file in the same directory, fsync, rename.
 * A crash leaves either the old file or the new one, never half of one.
 */
export function writeFileAtomic(path: string, chunks: string | Uint8Array | Iterable<Uint8Array>): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = tempPathFor(path);
  const fd = openSync(tmp, 'w');
  try {
    const parts: Iterable<Uint8Array> =
      typeof chunks === 'string' ? [Buffer.from(chunks, 'utf8')] : chunks instanceof Uint8Array ? [chunks] : chunks;
    for (const part of parts) {
      let off = 0;
      while (off < part.byteLength) off += writeSync(fd, part, off, part.byteLength - off);
    }
    fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw e;
  }
  closeSync(fd);
  renameSync(tmp, path);
}

/**
 * Builds a directory atomically: `fill` writes into a fresh temporary directory, which then replaces
 * `dir` (the old one, if any, is removed only after the new one is complete).
 */
export function writeDirAtomic(dir: string, fill: (tmpDir: string) => void): void {
  mkdirSync(dirname(dir), { recursive: true });
  const tmp = tempPathFor(dir);
  mkdirSync(tmp);
  try {
    fill(tmp);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  const old = tempPathFor(dir);
  let moved = false;
  try {
    renameSync(dir, old);
    moved = true;
  } catch {
    // no previous directory
  }
  renameSync(tmp, dir);
  if (moved) rmSync(old, { recursive: true, force: true });
}
