/**
 * Git state for a run record, through simple-git. FACTS: `diff()` without arguments omits staged
 * changes (use `diff(['HEAD'])`), and untracked files appear only in `status().not_added`; so the
 * dirty flag comes from `status()`, which sees staged, unstaged and untracked changes alike.
 * Never throws: a directory outside any repository, a repository without commits, or a missing git
 * binary give null fields with a note.
 */
import { createHash } from 'node:crypto';
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

/** The patch of the working tree and index against HEAD (staged changes included; binary files too, so it applies). */
export async function gitPatch(dir: string): Promise<string | null> {
  try {
    const git = simpleGit({ baseDir: dir });
    if (!(await git.checkIsRepo())) return null;
    return await git.diff(['--binary', 'HEAD']);
  } catch {
    return null;
  }
}

/** The files a patch touches (`diff --git a/x b/x` headers), sorted. */
export function patchFiles(patch: string | null | undefined): string[] {
  if (patch === null || patch === undefined) return [];
  const files = new Set<string>();
  for (const m of patch.matchAll(/^diff --git a\/(.+?) b\/(.+)$/gm)) files.add(m[2]!);
  return [...files].sort();
}

const sha256 = (text: string): string => createHash('sha256').update(Buffer.from(text, 'utf8')).digest('hex');
const shortList = (xs: readonly string[], n = 8): string => `${xs.slice(0, n).join(', ')}${xs.length > n ? `, … (${xs.length} in all)` : ''}`;

export interface SourceCheck {
  /** The tree holds the recorded code: same commit, same patch against it, same untracked files. */
  matches: boolean;
  /** What differs, one sentence each (empty when it matches). */
  problems: string[];
  current: GitInfo;
  /** sha256 of the tree's patch against HEAD (null when there is none). */
  currentPatchSha256: string | null;
}

/**
 * Compares a run's recorded git state with the repository at `dir` now, saying what differs: the
 * commit (and how many commits and which files lie between), the uncommitted patch (by sha256, with
 * the files it touches then and now), and the untracked files. `recordedPatch` is the patch file's
 * text when the record has one (to name its files).
 */
export async function checkSource(recorded: GitInfo, dir: string, recordedPatch?: string | null): Promise<SourceCheck> {
  const current = await gitInfo(dir);
  const problems: string[] = [];
  if (!recorded.isRepo || recorded.commit === null) {
    problems.push(`the run recorded no commit (${recorded.note ?? 'not a git repository'}): the code it ran cannot be checked`);
  }
  if (!current.isRepo || current.commit === null) {
    problems.push(`${dir} has no commit to check (${current.note ?? 'not a git repository'})`);
  }
  if (problems.length > 0) return { matches: false, problems, current, currentPatchSha256: null };
  const git = simpleGit({ baseDir: dir });
  const patch = (await gitPatch(dir)) ?? '';
  const currentPatchSha256 = patch === '' ? null : sha256(patch);
  if (recorded.commit !== current.commit) {
    let between = '';
    try {
      await git.raw(['cat-file', '-e', `${recorded.commit}^{commit}`]);
      const ahead = Number((await git.raw(['rev-list', '--count', `${recorded.commit}..HEAD`])).trim());
      const behind = Number((await git.raw(['rev-list', '--count', `HEAD..${recorded.commit}`])).trim());
      const changed = (await git.raw(['diff', '--name-only', recorded.commit!, 'HEAD'])).split('\n').filter((l) => l !== '');
      between = `; HEAD is ${ahead} commit(s) ahead and ${behind} behind it${changed.length > 0 ? `, files changed since: ${shortList(changed)}` : ''}`;
    } catch {
      between = '; that commit is not in this repository';
    }
    problems.push(`recorded commit ${recorded.commit} (${recorded.branch ?? 'no branch'}), the working tree is at ${current.commit} (${current.branch ?? 'no branch'})${between}`);
  }
  const recordedSha = recorded.patchSha256 ?? null;
  if (recordedSha !== currentPatchSha256) {
    const then = patchFiles(recordedPatch);
    const now = patchFiles(patch);
    const what = (sha: string | null, bytes: number | undefined): string => (sha === null ? 'none' : `sha256 ${sha.slice(0, 12)}, ${bytes ?? '?'} bytes`);
    const files = recordedPatch !== undefined && recordedPatch !== null ? `; files changed then: ${then.length > 0 ? shortList(then) : 'none'}, now: ${now.length > 0 ? shortList(now) : 'none'}` : now.length > 0 ? `; files changed now: ${shortList(now)}` : '';
    problems.push(`uncommitted changes differ from the recorded ones (recorded patch: ${what(recordedSha, recorded.patchBytes)}; now: ${what(currentPatchSha256, Buffer.byteLength(patch))})${files}`);
  }
  const onlyThen = recorded.untracked.filter((f) => !current.untracked.includes(f));
  const onlyNow = current.untracked.filter((f) => !recorded.untracked.includes(f));
  if (onlyThen.length + onlyNow.length > 0) {
    problems.push(`untracked files differ (only at record time: ${onlyThen.length > 0 ? shortList(onlyThen) : 'none'}; only now: ${onlyNow.length > 0 ? shortList(onlyNow) : 'none'})`);
  }
  return { matches: problems.length === 0, problems, current, currentPatchSha256 };
}
