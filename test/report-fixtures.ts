/**
 * Synthetic run records for the compare/export/report/CLI tests (not a test file itself), written
 * through the tracker API into a temporary home:
 *   a: auditor train, completed, lr 3e-4 r 16, tag 'baseline', confusion-matrix eval report
 *   b: auditor train, completed, lr 1e-3 r 8, one test sample swapped in its manifest
 *   c: heart-risk eval, completed, reliability-curve eval report
 *   d: auditor train left 'running' with a heartbeat an hour old (a crashed process)
 * Created in that order, so newest first is d, c, b, a.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defineConfig } from '../src/config/index.ts';
import type { SplitManifest } from '../src/data/manifest.ts';
import { openRun, type RunHandle, type RunRecord } from '../src/tracker/index.ts';
import { RunFileAdapter } from '../src/tracker/store.ts';
import { writeFileAtomic } from '../src/util/atomic.ts';
import { fakeManifest } from './tracker-helpers.ts';

export interface Fixture {
  home: string;
  a: RunRecord;
  b: RunRecord;
  c: RunRecord;
  d: RunRecord;
  /** The losses logged per run, in step order. */
  losses: Record<'a' | 'b' | 'c' | 'd', (number | null)[]>;
  lrs: Record<'a' | 'b', number[]>;
}

const LABELS = ['ok', 'warn', 'fail'];

function manifest(testIds: string[]): SplitManifest {
  const m = fakeManifest();
  // The record keeps the manifest's own sha256: any 64 hex digits distinct per manifest do here.
  const sha = testIds.join('') === 'd' ? 'ab'.repeat(32) : 'cd'.repeat(32);
  return { ...m, splits: { ...m.splits, test: testIds }, counts: { ...m.counts, test: testIds.length }, sha256: sha };
}

async function evalReport(run: RunHandle, report: Record<string, unknown>, task: string): Promise<void> {
  const file = join(run.dir, 'eval-test-adapter.json');
  writeFileAtomic(file, JSON.stringify({ task, split: 'test', n: 4, metrics: {}, report }));
  await run.addArtifact(file, { kind: 'eval-report' });
}

async function trainRun(home: string, gitDir: string, o: { lr: number; r: number; losses: (number | null)[]; testIds: string[]; tags?: string[]; metrics?: Record<string, number>; confusion?: number[][] }): Promise<RunHandle> {
  const config = defineConfig({ task: 'auditor', seed: 7, training: { lr: o.lr, maxSteps: o.losses.length }, lora: { r: o.r } });
  const run = await openRun({ config, root: home, gitDir, name: 'auditor-nano', manifest: manifest(o.testIds), tags: o.tags ?? [], heartbeatMs: 0, flushMs: 0, backend: { name: 'cpu', threads: 1, simd: false } });
  o.losses.forEach((loss, i) => run.logStep({ step: i + 1, loss: loss ?? NaN, lr: o.lr * (i + 1) / o.losses.length, tokensPerSec: 100 }));
  run.logEval({ step: o.losses.length, split: 'validation', metrics: { loss: 1.5 } });
  if (o.confusion !== undefined) {
    await evalReport(run, { n: 4, model: { accuracy: 0.5, confusion: { labels: LABELS, columns: [...LABELS, 'unparseable'], matrix: o.confusion } } }, 'auditor');
  }
  return run;
}

const tick = (): Promise<void> => new Promise((r) => setTimeout(r, 5));

export async function makeRuns(): Promise<Fixture> {
  const home = mkdtempSync(join(tmpdir(), 'clinilora-compare-'));
  const gitDir = mkdtempSync(join(tmpdir(), 'clinilora-nogit-')); // not a repository: no git calls to wait for
  const lossesA = [2.5, 2.1, null, 1.6, 1.2];
  const lossesB = [2.4, 1.9, 1.5, 1.1, 0.9];
  const ra = await trainRun(home, gitDir, { lr: 3e-4, r: 16, losses: lossesA, testIds: ['d'], tags: ['baseline'], confusion: [[1, 0, 0, 0], [1, 1, 0, 0], [0, 0, 0, 1]] });
  ra.finish('completed', { metrics: { accuracy: 0.5, final_loss: 1.2, steps: 5 } });
  await tick(); // distinct start times: 'newest first' is then well defined
  const rb = await trainRun(home, gitDir, { lr: 1e-3, r: 8, losses: lossesB, testIds: ['e'], confusion: [[1, 0, 0, 0], [0, 2, 0, 0], [0, 0, 1, 0]] });
  rb.finish('completed', { metrics: { accuracy: 0.75, final_loss: 0.9, steps: 5, only_b: 1 } });
  await tick();

  const hc = defineConfig({ task: 'heart-risk', seed: 3 });
  const rc = await openRun({ config: hc, kind: 'eval', root: home, gitDir, name: 'heart-eval', heartbeatMs: 0, flushMs: 0 });
  const bins = [0.1, 0.3, 0.5, 0.7, 0.9].map((mid, i) => ({ lower: mid - 0.1, upper: mid + 0.1, count: i === 2 ? 0 : 5, meanPredicted: i === 2 ? null : mid, observedRate: i === 2 ? null : mid / 2 }));
  await evalReport(rc, { n: 20, auc: { auc: 0.7 }, reliability: bins }, 'heart-risk');
  rc.finish('completed', { metrics: { auc: 0.7, accuracy: 0.6 } });
  await tick();

  const rd = await trainRun(home, gitDir, { lr: 3e-4, r: 16, losses: [3, 2.8], testIds: ['d'] });
  rd.flush();
  // A process that died an hour ago: its last write had an old heartbeat and status 'running'.
  const adapter = new RunFileAdapter(rd.file);
  const old = new Date(Date.now() - 3600_000).toISOString();
  const stale = adapter.read()!;
  adapter.write({ ...stale, times: { ...stale.times, heartbeat: old } });

  const read = (h: RunHandle): RunRecord => JSON.parse(readFileSync(h.file, 'utf8')) as RunRecord;
  return { home, a: read(ra), b: read(rb), c: read(rc), d: read(rd), losses: { a: lossesA, b: lossesB, c: [], d: [3, 2.8] }, lrs: { a: lossesA.map((_, i) => (3e-4 * (i + 1)) / 5), b: lossesB.map((_, i) => (1e-3 * (i + 1)) / 5) } };
}
