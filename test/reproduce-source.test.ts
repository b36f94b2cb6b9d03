/**
 * The code check behind `reproduce` (checkSource) and `--checkout` (checkoutRecorded) on real git
 * repositories in temp directories: clean, dirty, staged, untracked, a new commit, not a repository;
 * plus the lineage hooks (withRunParents, CLINILORA_PARENTS).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { CliniloraError } from '../src/errors.ts';
import { checkoutRecorded, checkSource, envParents, gitPatch, openRun, readRun, withRunParents, type GitInfo, type RunRecord } from '../src/tracker/index.ts';
import { smallConfig } from './tracker-helpers.ts';

process.env.NODE_ENV = 'test';
const root = mkdtempSync(join(tmpdir(), 'clinilora-runs-'));

const git = (cwd: string, ...args: string[]): string =>
  execFileSync('git', args, { cwd, encoding: 'utf8', env: { ...process.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@x', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@x' } }).trim();

function committedRepo(): string {
  const dir = mkdtempSync(join(tmpdir(), 'clinilora-git-'));
  git(dir, 'init', '-q', '-b', 'trunk');
  writeFileSync(join(dir, 'a.txt'), 'one\n');
  writeFileSync(join(dir, 'b.bin'), Buffer.from([0, 1, 2, 3, 255]));
  writeFileSync(join(dir, '.gitignore'), 'ignored.txt\n');
  git(dir, 'add', '.');
  git(dir, 'commit', '-q', '-m', 'first');
  return dir;
}

/** A finished run recording the git state of `repo` (and its patch file, when dirty). */
async function recordIn(repo: string): Promise<{ record: RunRecord; dir: string }> {
  const h = await openRun({ config: smallConfig(), root, gitDir: repo, heartbeatMs: 0, flushMs: 0 });
  h.finish('completed');
  return { record: readRun(h.id, { root }), dir: h.dir };
}

const patchOf = (r: { record: RunRecord; dir: string }): string | null => (r.record.git.patchFile !== undefined ? readFileSync(join(r.dir, r.record.git.patchFile), 'utf8') : null);

test('clean tree, same commit: matches; a new commit: names both commits, the distance and the files', async () => {
  const repo = committedRepo();
  const rec = await recordIn(repo);
  assert.equal(rec.record.git.dirty, false);
  const same = await checkSource(rec.record.git, repo);
  assert.equal(same.matches, true, same.problems.join('; '));
  assert.deepEqual(same.problems, []);
  const first = git(repo, 'rev-parse', 'HEAD');
  writeFileSync(join(repo, 'a.txt'), 'one\ntwo\n');
  git(repo, 'commit', '-qam', 'second');
  const moved = await checkSource(rec.record.git, repo);
  assert.equal(moved.matches, false);
  assert.equal(moved.problems.length, 1);
  assert.match(moved.problems[0]!, new RegExp(`recorded commit ${first} \\(trunk\\), the working tree is at ${git(repo, 'rev-parse', 'HEAD')} \\(trunk\\); HEAD is 1 commit\\(s\\) ahead and 0 behind it, files changed since: a\\.txt`));
  // A commit the repository has never seen (another clone's).
  const foreign = await checkSource({ ...rec.record.git, commit: 'f'.repeat(40) }, repo);
  assert.match(foreign.problems[0]!, /that commit is not in this repository/);
});

test('unstaged and staged changes: recorded in the patch; the same dirt matches, other dirt is named by file', async () => {
  const repo = committedRepo();
  writeFileSync(join(repo, 'a.txt'), 'one changed\n'); // unstaged
  writeFileSync(join(repo, 'c.txt'), 'staged new file\n');
  git(repo, 'add', 'c.txt'); // staged only: plain `git diff` would miss it
  const rec = await recordIn(repo);
  assert.equal(rec.record.git.dirty, true);
  assert.deepEqual(rec.record.git.untracked, []);
  const patch = patchOf(rec)!;
  assert.match(patch, /\+one changed/);
  assert.match(patch, /\+staged new file/);
  assert.equal((await checkSource(rec.record.git, repo, patch)).matches, true);
  // Unstaging keeps the content but drops c.txt from `git diff HEAD` (it becomes untracked): both named.
  git(repo, 'rm', '-q', '--cached', 'c.txt');
  const unstaged = await checkSource(rec.record.git, repo, patch);
  assert.equal(unstaged.matches, false);
  assert.match(unstaged.problems.join('\n'), /uncommitted changes differ from the recorded ones \(recorded patch: sha256 [0-9a-f]{12}, \d+ bytes; now: sha256 [0-9a-f]{12}, \d+ bytes\); files changed then: a\.txt, c\.txt, now: a\.txt/);
  assert.match(unstaged.problems.join('\n'), /untracked files differ \(only at record time: none; only now: c\.txt\)/);
  // A clean tree against a dirty record.
  git(repo, 'checkout', '-q', '--', '.');
  git(repo, 'clean', '-qf');
  const clean = await checkSource(rec.record.git, repo, patch);
  assert.deepEqual(clean.problems, [`uncommitted changes differ from the recorded ones (recorded patch: sha256 ${rec.record.git.patchSha256!.slice(0, 12)}, ${rec.record.git.patchBytes} bytes; now: none); files changed then: a.txt, c.txt, now: none`]);
});

test('untracked files: listed in the record; a new one (but not an ignored one) is a mismatch', async () => {
  const repo = committedRepo();
  writeFileSync(join(repo, 'notes.txt'), 'untracked\n');
  const rec = await recordIn(repo);
  assert.equal(rec.record.git.dirty, true);
  assert.deepEqual(rec.record.git.untracked, ['notes.txt']);
  assert.equal(rec.record.git.patchFile, undefined, 'untracked files are listed, not in the patch');
  writeFileSync(join(repo, 'ignored.txt'), 'ignored\n');
  assert.equal((await checkSource(rec.record.git, repo)).matches, true, 'ignored files do not count');
  writeFileSync(join(repo, 'more.txt'), 'another\n');
  const more = await checkSource(rec.record.git, repo);
  assert.deepEqual(more.problems, ['untracked files differ (only at record time: none; only now: more.txt)']);
});

test('not a repository: recorded or now, the code cannot be checked and that is said', async () => {
  const plain = mkdtempSync(join(tmpdir(), 'clinilora-nogit-'));
  const rec = await recordIn(plain);
  assert.equal(rec.record.git.isRepo, false);
  const repo = committedRepo();
  const fromPlain = await checkSource(rec.record.git, repo);
  assert.equal(fromPlain.matches, false);
  assert.match(fromPlain.problems[0]!, /the run recorded no commit \(not a git repository\): the code it ran cannot be checked/);
  const inRepo = await recordIn(repo);
  const toPlain = await checkSource(inRepo.record.git, plain);
  assert.match(toPlain.problems.join('\n'), /has no commit to check \(not a git repository\)/);
  await assert.rejects(checkoutRecorded(repo, rec.record.git, null), /recorded no commit/);
});

test('checkout: a worktree at the recorded commit with the recorded patch (text, binary, staged new file), then removed', async () => {
  const repo = committedRepo();
  const first = git(repo, 'rev-parse', 'HEAD');
  writeFileSync(join(repo, 'a.txt'), 'one changed\n');
  writeFileSync(join(repo, 'b.bin'), Buffer.from([9, 8, 7, 0, 1]));
  writeFileSync(join(repo, 'c.txt'), 'staged new file\n');
  git(repo, 'add', 'c.txt');
  const rec = await recordIn(repo);
  const patch = patchOf(rec)!;
  // The repository moves on: a new commit and a clean tree.
  git(repo, 'add', '-A');
  git(repo, 'commit', '-qm', 'second');
  writeFileSync(join(repo, 'a.txt'), 'later\n');
  git(repo, 'commit', '-qam', 'third');

  const co = await checkoutRecorded(repo, rec.record.git, join(rec.dir, rec.record.git.patchFile!));
  try {
    assert.equal(git(co.dir, 'rev-parse', 'HEAD'), first);
    assert.equal(readFileSync(join(co.dir, 'a.txt'), 'utf8'), 'one changed\n');
    assert.deepEqual([...readFileSync(join(co.dir, 'b.bin'))], [9, 8, 7, 0, 1]);
    assert.equal(readFileSync(join(co.dir, 'c.txt'), 'utf8'), 'staged new file\n');
    // The tree holds the recorded state exactly: its own patch against HEAD is the recorded one.
    assert.equal(await gitPatch(co.dir), patch);
    assert.equal((await checkSource(rec.record.git, co.dir, patch)).matches, true);
    assert.deepEqual(co.notes, []);
  } finally {
    await co.remove();
  }
  assert.equal(existsSync(co.dir), false);
  assert.equal(git(repo, 'worktree', 'list').split('\n').length, 1, 'the worktree is unregistered');

  // A patch file that is not the recorded one is refused before anything is checked out.
  const bad = join(mkdtempSync(join(tmpdir(), 'clinilora-patch-')), 'git.patch');
  writeFileSync(bad, `${patch}\n`);
  await assert.rejects(checkoutRecorded(repo, rec.record.git, bad), (e) => e instanceof CliniloraError && e.details.field === 'git.patchSha256' && e.details.expected === createHash('sha256').update(patch).digest('hex'));
  await assert.rejects(checkoutRecorded(repo, { ...rec.record.git, commit: 'e'.repeat(40) } as GitInfo, null), /is not in the repository/);
  assert.equal(git(repo, 'worktree', 'list').split('\n').length, 1);
});

test('lineage: withRunParents links runs opened inside it (across awaits), CLINILORA_PARENTS links every run', async () => {
  const plain = mkdtempSync(join(tmpdir(), 'clinilora-nogit-'));
  const inside = await withRunParents([{ id: 'orig-1', role: 'reproduces' }], async () => {
    await new Promise((r) => setTimeout(r, 5));
    const h = await openRun({ config: smallConfig(), root, gitDir: plain, heartbeatMs: 0, parents: [{ id: 'ad-1', role: 'adapter' }] });
    h.finish('completed');
    return readRun(h.id, { root });
  });
  assert.deepEqual(inside.parents, [{ id: 'ad-1', role: 'adapter' }, { id: 'orig-1', role: 'reproduces' }]);
  const outside = await openRun({ config: smallConfig(), root, gitDir: plain, heartbeatMs: 0 });
  outside.finish('completed');
  assert.deepEqual(readRun(outside.id, { root }).parents, [], 'the context ends with the callback');

  assert.deepEqual(envParents('notebook:nb-1, reproduces:orig-2'), [{ role: 'notebook', id: 'nb-1' }, { role: 'reproduces', id: 'orig-2' }]);
  assert.throws(() => envParents('notebook nb-1'), (e) => e instanceof CliniloraError && e.details.field === 'CLINILORA_PARENTS');
  process.env.CLINILORA_PARENTS = 'notebook:nb-7';
  try {
    const h = await openRun({ config: smallConfig(), root, gitDir: plain, heartbeatMs: 0 });
    h.finish('completed');
    assert.deepEqual(readRun(h.id, { root }).parents, [{ id: 'nb-7', role: 'notebook' }]);
  } finally {
    delete process.env.CLINILORA_PARENTS;
  }
});
