/**
 * Progress display as trainer callbacks. On a TTY: one line rewritten in place (step, loss, lr,
 * tokens/s, ETA). Otherwise (CI, a log file): a plain line every `every` steps, one per evaluation
 * and one at the end — nothing else.
 */
import type { EvalInfo, StartInfo, StepInfo, TrainCallbacks, TrainSummary } from './callbacks.ts';

export interface ProgressStream {
  write(s: string): unknown;
  isTTY?: boolean;
}

export interface ProgressOptions {
  /** Default process.stderr. */
  stream?: ProgressStream;
  /** Override the stream's own isTTY. */
  tty?: boolean;
  /** Plain-line interval when not a TTY (default 10 steps). */
  every?: number;
}

export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '?';
  const s = Math.round(ms / 1000);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  return h > 0 ? `${h}h${String(m).padStart(2, '0')}m` : m > 0 ? `${m}m${String(sec).padStart(2, '0')}s` : `${sec}s`;
}

export function progressCallbacks(opts: ProgressOptions = {}): TrainCallbacks {
  const stream = opts.stream ?? process.stderr;
  const tty = opts.tty ?? stream.isTTY === true;
  const every = Math.max(1, opts.every ?? 10);
  let startStep = 0;
  let sessionMs = 0;
  let dirty = false;
  const line = (i: StepInfo): string => {
    const done = i.step - startStep;
    const eta = done > 0 ? ((i.totalSteps - i.step) * sessionMs) / done : NaN;
    return `step ${i.step}/${i.totalSteps} loss ${i.loss.toFixed(4)} lr ${i.lr.toExponential(2)} ` +
      `${Math.round(i.tokensPerSec)} tok/s eta ${formatDuration(eta)}`;
  };
  const endLine = (): void => {
    if (tty && dirty) stream.write('\n');
    dirty = false;
  };
  return {
    onStart(s: StartInfo) {
      startStep = s.startStep;
      sessionMs = 0;
    },
    onStepEnd(i: StepInfo) {
      sessionMs += i.stepMs;
      if (tty) {
        stream.write(`\r\x1b[2K${line(i)}`);
        dirty = true;
      } else if (i.step % every === 0 || i.step === i.totalSteps) {
        stream.write(`${line(i)}\n`);
      }
    },
    onEval(e: EvalInfo) {
      endLine();
      stream.write(`eval step ${e.step}: val loss ${e.valLoss.toFixed(4)} (best ${e.bestValLoss.toFixed(4)} at ${e.bestStep})\n`);
    },
    onEnd(s: TrainSummary) {
      endLine();
      stream.write(`${s.status} at step ${s.step}/${s.totalSteps} in ${formatDuration(s.elapsedMs)}` +
        (s.finalLoss !== null ? `, loss ${s.finalLoss.toFixed(4)}` : '') + (s.lastCheckpoint !== undefined ? `, checkpoint ${s.lastCheckpoint}` : '') + '\n');
    },
  };
}
