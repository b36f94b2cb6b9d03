/**
 * `reproduce --checkout`: the recorded code in a temporary git worktree (W&B's "restore"): the
 * recorded commit, detached, with the recorded patch (staged and unstaged changes against it)
 * applied. Untracked files were only listed in the record, never saved, so they cannot come back:
 * the notes say which are missing.
 *
 * Layout: `<tmp>/tree` is the worktree and `<tmp>/node_modules` links to the project's packages, so
 * Node finds them from the tree (resolution walks up) while the tree itself stays clean.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { simpleGit } from 'simple-git';
import { CliniloraError } from '../errors.ts';
import { nodeModulesDir } from './env.ts';
import type { GitInfo } from './schema.ts';

export interface Checkout {
  /** The worktree: the recorded commit with the recorded patch applied. */
  dir: string;
  /** What could not be restored. */
  notes: string[];
  /** Removes the worktree (and its registration in the repository) and the temporary directory. */
  remove(): Promise<void>;
}

/**
 * Checks out `git.commit` of the repository at `repoDir` into a temporary worktree and applies the
 * patch file `patchPath` (verified against `git.patchSha256` first). Errors name the commit or file.
 */
export async function checkoutRecorded(repoDir: string, git: GitInfo, patchPath: string | null): Promise<Checkout> {
  if (!git.isRepo || git.commit === null) {
    throw new CliniloraError('E_ARG', 'the run recorded no commit: there is nothing to check out', { field: 'git.commit', found: git.note ?? 'null', hint: 'reproduce it in place with --allow-dirty' });
  }
  const commit = git.commit;
  const repo = simpleGit({ baseDir: repoDir });
  try {
    await repo.raw(['cat-file', '-e', `${commit}^{commit}`]);
  } catch {
    throw new CliniloraError('E_MISSING', `commit ${commit} is not in the repository at ${repoDir}`, { field: 'git.commit', hint: 'fetch it (git fetch --all) or reproduce from a clone that has it' });
  }
  let patch: string | null = null;
  if (git.patchSha256 !== undefined) {
    if (patchPath === null || !existsSync(patchPath)) {
      throw new CliniloraError('E_MISSING', 'the recorded patch file is missing', { file: patchPath ?? '(none)', field: 'git.patchFile', hint: 'without it the uncommitted changes the run had cannot be restored' });
    }
    patch = readFileSync(patchPath, 'utf8');
    const sha = createHash('sha256').update(Buffer.from(patch, 'utf8')).digest('hex');
    if (sha !== git.patchSha256) {
      throw new CliniloraError('E_FORMAT', 'the recorded patch file does not match its sha256 in the record', { file: patchPath, field: 'git.patchSha256', expected: git.patchSha256, found: sha });
    }
  }
  const tmp = mkdtempSync(join(tmpdir(), 'clinilora-reproduce-'));
  const dir = join(tmp, 'tree');
  let added = false;
  const remove = async (): Promise<void> => {
    if (added) {
      try {
        await repo.raw(['worktree', 'remove', '--force', dir]);
      } catch {
        // already gone: prune drops its registration below
      }
      await repo.raw(['worktree', 'prune']).catch(() => undefined);
    }
    rmSync(tmp, { recursive: true, force: true });
  };
  try {
    await repo.raw(['worktree', 'add', '--detach', dir, commit]);
    added = true;
    if (patch !== null && patchPath !== null) {
      try {
        // --index: new files the patch adds are staged as they were, so `git diff HEAD` in the tree gives the same patch.
        await simpleGit({ baseDir: dir }).raw(['apply', '--index', '--whitespace=nowarn', patchPath]);
      } catch (e) {
        throw new CliniloraError('E_IO', `the recorded patch does not apply to commit ${commit}: ${(e as Error).message.split('\n')[0] ?? ''}`, { file: patchPath, field: 'git.patchFile' });
      }
    }
    const modules = nodeModulesDir(repoDir);
    if (modules !== null) symlinkSync(modules, join(tmp, 'node_modules'), 'dir');
  } catch (e) {
    await remove();
    throw e;
  }
  const notes = git.untracked.length > 0 ? [`${git.untracked.length} untracked file(s) of the original were only listed, not saved, and are missing from the checkout: ${git.untracked.slice(0, 8).join(', ')}${git.untracked.length > 8 ? ', …' : ''}`] : [];
  return { dir, notes, remove };
}
