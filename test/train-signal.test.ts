/**
 * SIGTERM to a real training process: it finishes the step, writes a checkpoint, reports the
 * interruption through onInterrupt, resolves with status 'interrupted' (exit code non-zero here),
 * and prints nothing on a non-TTY stderr but the progress end line. The checkpoint it left, resumed
 * in THIS process, continues exactly as a run never stopped.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { initBackend } from '../src/backend/index.ts';
import { getPreset } from '../src/model/config.ts';
import { initPhi3 } from '../src/model/init.ts';
import { defineLoraConfig } from '../src/model/lora/config.ts';
import { attachLora } from '../src/model/lora/model.ts';
import { Rng } from '../src/util/random.ts';
import { train, type TrainConfig } from '../src/train/trainer.ts';
import type { EncodedSample } from '../src/train/batching.ts';
import type { TrainState } from '../src/train/checkpoint.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const mod = (p: string): string => JSON.stringify(pathToFileURL(join(ROOT, p)).href);

// One definition of the run, used by the child (as source text) and by this process.
const SETUP = `
const { initBackend } = await import(${mod('src/backend/index.ts')});
const { getPreset } = await import(${mod('src/model/config.ts')});
const { initPhi3 } = await import(${mod('src/model/init.ts')});
const { defineLoraConfig } = await import(${mod('src/model/lora/config.ts')});
const { attachLora } = await import(${mod('src/model/lora/model.ts')});
const { Rng } = await import(${mod('src/util/random.ts')});
const { train } = await import(${mod('src/train/trainer.ts')});
`;
const RUN = `
const CFG = { ...getPreset('phi3-nano'), hiddenSize: 32, intermediateSize: 64, numHiddenLayers: 1, numAttentionHeads: 2, numKeyValueHeads: 2, residPdrop: 0.1 };
const LORA = defineLoraConfig({ r: 4, loraAlpha: 8, loraDropout: 0.1 });
function makeModel() { const m = initPhi3(CFG, new Rng(1)); attachLora(m, LORA, new Rng(1).split('lora')); return m; }
const r = new Rng(21);
const TRAIN = Array.from({ length: 8 }, () => {
  const len = 8 + r.int(16);
  const ids = Int32Array.from({ length: len }, () => r.int(32000));
  return { ids, labels: new Uint8Array(len).fill(1, len - 4), promptLength: len - 4, answerLength: 4, truncated: 'none' };
});
const CONFIG = { batchSize: 2, gradAccumulation: 2, maxSteps: 200, lr: 1e-2, warmupRatio: 0.1, padId: 32000, seed: 9, checkpointEvery: 1000 };
`;

const CHILD = `${SETUP}${RUN}
await initBackend({ backend: 'wasm' });
const s = await train({
  model: makeModel(), train: TRAIN, config: CONFIG, checkpointDir: process.env.CKPT,
  progress: true,
  callbacks: {
    onStepEnd: (i) => { process.stdout.write('STEP ' + i.step + ' ' + JSON.stringify(i.loss) + '\\n'); },
    onInterrupt: (i) => { process.stdout.write('INTERRUPTED ' + i.step + ' ' + i.reason + ' ' + i.dir + '\\n'); },
  },
});
process.stdout.write('STATUS ' + s.status + '\\n');
process.exitCode = s.status === 'interrupted' ? 143 : 0;
`;

before(async () => {
  await initBackend({ backend: 'wasm' });
});

test('SIGTERM: finish the step, checkpoint, onInterrupt, status interrupted, exit non-zero; resume is exact', async () => {
  const ckpt = mkdtempSync(join(tmpdir(), 'clinilora-signal-'));
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', CHILD], { cwd: ROOT, env: { ...process.env, CKPT: ckpt }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  let sent = false;
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
    if (!sent && /^STEP 2 /m.test(out)) {
      sent = true;
      child.kill('SIGTERM');
    }
  });
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const code = await new Promise<number | null>((res) => child.on('exit', (c) => res(c)));
  assert.ok(sent, `the child never reached step 2:\n${out}\n${err}`);
  assert.equal(code, 143, `exit code; stdout:\n${out}\nstderr:\n${err}`);
  const steps = [...out.matchAll(/^STEP (\d+) (\S+)$/gm)].map((m) => [Number(m[1]), JSON.parse(m[2]!) as number] as const);
  const last = steps[steps.length - 1]![0];
  assert.ok(last >= 2 && last < 200, `stopped at ${last}`);
  const m = /^INTERRUPTED (\d+) SIGTERM (\S+)$/m.exec(out);
  assert.ok(m !== null, out);
  assert.equal(Number(m[1]), last, 'the checkpoint is of the last finished step');
  assert.match(out, /^STATUS interrupted$/m);
  const dir = m[2]!;
  assert.equal(dir, join(ckpt, `step-${String(last).padStart(7, '0')}`));
  const state = JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8')) as TrainState;
  assert.equal(state.step, last);
  assert.deepEqual(state.losses, steps.map(([, l]) => l));
  // Non-TTY progress: plain lines only; here just the end line (no step reached a multiple of 10).
  assert.deepEqual(err.trim().split('\n'), [`interrupted at step ${last}/200 in ${err.match(/in (\S+),/)?.[1]}, loss ${steps[steps.length - 1]![1].toFixed(4)}, checkpoint ${dir}`]);

  // Resume in this process and compare with a straight run here, both stopped at last + 2.
  const build = new Function('deps', `const { getPreset, initPhi3, defineLoraConfig, attachLora, Rng } = deps;${RUN} return { makeModel, TRAIN, CONFIG };`) as (deps: unknown) => { makeModel: () => ReturnType<typeof initPhi3>; TRAIN: EncodedSample[]; CONFIG: TrainConfig };
  const { makeModel, TRAIN, CONFIG } = build({ getPreset, initPhi3, defineLoraConfig, attachLora, Rng });
  const runTo = async (stop: number, resumeFrom?: string): Promise<number[]> => {
    const ctl = new AbortController();
    const model = makeModel();
    const s = await train({
      model, train: TRAIN, config: CONFIG, progress: false, handleSignals: false, abortSignal: ctl.signal, restoreBest: false,
      ...(resumeFrom !== undefined ? { resumeFrom } : {}),
      callbacks: { onStepEnd: (i) => { if (i.step === stop) ctl.abort(); } },
    });
    model.dispose();
    return s.losses;
  };
  const straight = await runTo(last + 2);
  const resumed = await runTo(last + 2, dir);
  assert.equal(straight.length, last + 2);
  assert.equal(resumed.length, last + 2);
  straight.forEach((l, i) => assert.ok(resumed[i] === l, `step ${i + 1}: ${resumed[i]} !== ${l}`));
  steps.forEach(([s, l]) => assert.ok(straight[s - 1] === l, `child step ${s} equals this process's`));
});
