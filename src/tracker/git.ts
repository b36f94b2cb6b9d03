/**
 * Git state for a run record, through simple-git. FACTS: `diff()` without arguments omits staged
 * changes (use `diff(['HEAD'])`), and untracked files appear only in `status().not_added`; so the
 * dirty flag comes from `status()`, which sees staged, unstaged and untracked changes alike.
 * Never throws: a directory outside any repository, a repository without commits, or a missing git
 * binary give null fields with a note.
 */
import { existsSync } from 'node:fs';
import { simpleGit } from 'simple-git';
import type { GitInfo } from './schema.ts';

const MAX_UNTRACKED = 200;

export async function gitInfo(dir: string): Promise<GitInfo> {
  const none = (note: string): GitInfo => ({ isRepo: false, commit: null, branch: null, dirty: null, untracked: [], note });
  if (!existsSync(dir)) return none(`directory ${dir} does not exist`);
  let git;
  try {
    git = simpleGit({ baseDir: dir, binary: 'git', maxConcurrentProcesses: 2 });
    if (!(await git.checkIsRepo())) return none('not a git repository');
  } catch (e) {
    return none(`git unavailable: ${(e as Error).message.split('\n')[0] ?? ''}`);
  }
  try {
    const status = await git.status();
    const untracked = status.not_added.slice(0, MAX_UNTRACKED);
    let commit: string | null = null;
    let note: string | undefined;
    try {
      commit = (await git.revparse(['HEAD'])).trim();
    } catch {
      note = 'no commit yet';
    }
    return { isRepo: true, commit, branch: status.current ?? null, dirty: !status.isClean(), untracked, ...(note !== undefined ? { note } : {}) };
  } catch (e) {
    return { isRepo: true, commit: null, branch: null, dirty: null, untracked: [], note: `git failed: ${(e as Error).message.split('\n')[0] ?? ''}` };
  }
}

/** The patch of the working tree and index against HEAD (staged changes included), for issue 5. */
export async function gitPatch(dir: string): Promise<string | null> {
  try {
    const git = simpleGit({ baseDir: dir });
    if (!(await git.checkIsRepo())) return null;
    return await git.diff(['HEAD']);
  } catch {
    return null;
  }
}
