import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { gitInfo, gitPatch, openRun, readRun } from '../src/tracker/index.ts';
import { smallConfig } from './tracker-helpers.ts';

const git = (cwd: string, ...args: string[]): string =>
  execFileSync('git', args, {
    cwd,
    encoding: 'utf8',
    env: { ...process.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@x', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@x' },
  }).trim();

function newRepo(): string {
  const dir = mkdtempSync(join(tmpdir(), 'clinilora-git-'));
  git(dir, 'init', '-q', '-b', 'trunk');
  return dir;
}

function committedRepo(): string {
  const dir = newRepo();
  writeFileSync(join(dir, 'a.txt'), 'one\n');
  writeFileSync(join(dir, '.gitignore'), 'ignored.txt\n');
  git(dir, 'add', '.');
  git(dir, 'commit', '-q', '-m', 'first');
  return dir;
}

test('clean repository: commit, branch, not dirty', async () => {
  const dir = committedRepo();
  writeFileSync(join(dir, 'ignored.txt'), 'x'); // ignored files do not make it dirty
  const g = await gitInfo(dir);
  assert.equal(g.isRepo, true);
  assert.equal(g.commit, git(dir, 'rev-parse', 'HEAD'));
  assert.equal(g.branch, 'trunk');
  assert.equal(g.dirty, false);
  assert.deepEqual(g.untracked, []);
});

test('unstaged change: dirty', async () => {
  const dir = committedRepo();
  writeFileSync(join(dir, 'a.txt'), 'two\n');
  const g = await gitInfo(dir);
  assert.equal(g.dirty, true);
  assert.match((await gitPatch(dir)) ?? '', /\+two/);
});

test('staged-only change: dirty, and the patch against HEAD includes it', async () => {
  const dir = committedRepo();
  writeFileSync(join(dir, 'a.txt'), 'staged\n');
  git(dir, 'add', 'a.txt');
  assert.equal(git(dir, 'diff'), '', 'plain git diff misses staged changes');
  const g = await gitInfo(dir);
  assert.equal(g.dirty, true);
  assert.match((await gitPatch(dir)) ?? '', /\+staged/);
});

test('untracked file: dirty and listed', async () => {
  const dir = committedRepo();
  writeFileSync(join(dir, 'new.txt'), 'n');
  const g = await gitInfo(dir);
  assert.equal(g.dirty, true);
  assert.deepEqual(g.untracked, ['new.txt']);
});

test('not a repository, a missing directory and a repository without commits', async () => {
  const plain = mkdtempSync(join(tmpdir(), 'clinilora-plain-'));
  const g = await gitInfo(plain);
  assert.deepEqual([g.isRepo, g.commit, g.branch, g.dirty], [false, null, null, null]);
  assert.match(g.note ?? '', /not a git repository/);
  assert.equal((await gitInfo(join(plain, 'nope'))).isRepo, false);
  assert.equal(await gitPatch(plain), null);
  const empty = newRepo();
  const e = await gitInfo(empty);
  assert.equal(e.isRepo, true);
  assert.equal(e.commit, null);
  assert.match(e.note ?? '', /no commit/);
});

test('a run records the git state of its gitDir', async () => {
  const dir = committedRepo();
  writeFileSync(join(dir, 'a.txt'), 'changed\n');
  const root = mkdtempSync(join(tmpdir(), 'clinilora-runs-'));
  const h = await openRun({ config: smallConfig(), root, gitDir: dir });
  h.finish('completed');
  const r = readRun(h.id, { root });
  assert.equal(r.git.commit, git(dir, 'rev-parse', 'HEAD'));
  assert.equal(r.git.dirty, true);
});
