/**
 * A loss curve that redraws in place while training runs: `show()` displays it once, each point
 * added updates that same output (display_id), at most every `minIntervalMs`; `finish()` draws the
 * last state. It is an SVG (readable in any saved notebook) with a one-line text summary.
 * `callbacks()` plugs it into the trainer (`train({callbacks})`) or anything that reports steps.
 */
import type { EvalInfo, StepInfo, TrainSummary } from '../train/callbacks.ts';
import { display, Rendered, type DisplayHandle } from './display.ts';
import { MIME_BUNDLE, type Displayable, type MimeBundle } from './display-channel.ts';
import { lineChartSvg, type LineSeries } from './svg-chart.ts';

export interface LossCurveOptions {
  title?: string;
  /** Least time between two redraws (default 300 ms; finish() always redraws). */
  minIntervalMs?: number;
  width?: number;
  height?: number;
}

export class LossCurve implements Displayable {
  private readonly series = new Map<string, { x: number[]; y: number[] }>();
  private handle: DisplayHandle | null = null;
  private lastDraw = 0;
  private pending = false;
  /** How many times the shown output was redrawn (updates sent). */
  updates = 0;

  constructor(private readonly opts: LossCurveOptions = {}) {}

  /** Displays the curve (once); later points update this output. */
  show(): this {
    if (this.handle === null) {
      this.handle = display(this);
      this.lastDraw = Date.now();
    }
    return this;
  }

  /** Adds a point to a series ('train' by default) and redraws if enough time passed. */
  add(step: number, loss: number, series = 'train'): void {
    let s = this.series.get(series);
    if (s === undefined) {
      s = { x: [], y: [] };
      this.series.set(series, s);
    }
    s.x.push(step);
    s.y.push(loss);
    this.pending = true;
    if (this.handle !== null && Date.now() - this.lastDraw >= (this.opts.minIntervalMs ?? 300)) this.redraw();
  }

  /** Draws the final state (call when training ends). */
  finish(): this {
    if (this.handle !== null && this.pending) this.redraw();
    return this;
  }

  private redraw(): void {
    this.handle!.update(this);
    this.updates++;
    this.lastDraw = Date.now();
    this.pending = false;
  }

  /** The points so far, by series. */
  data(): LineSeries[] {
    return [...this.series].map(([name, s]) => ({ name, x: [...s.x], y: [...s.y] }));
  }

  /** One line per series: last and best loss. */
  summary(): string {
    if (this.series.size === 0) return `${this.opts.title ?? 'loss'}: no points yet`;
    return [...this.series]
      .map(([name, s]) => {
        const n = s.y.length;
        let best = 0;
        s.y.forEach((v, i) => {
          if (v < s.y[best]!) best = i;
        });
        return `${name}: step ${s.x[n - 1]} loss ${Number(s.y[n - 1]!.toPrecision(4))} (best ${Number(s.y[best]!.toPrecision(4))} at step ${s.x[best]}; ${n} points)`;
      })
      .join('\n');
  }

  [MIME_BUNDLE](): MimeBundle {
    const svg = lineChartSvg(this.data(), { title: this.opts.title ?? 'Training loss', xLabel: 'step', yLabel: 'loss', ...(this.opts.width !== undefined ? { width: this.opts.width } : {}), ...(this.opts.height !== undefined ? { height: this.opts.height } : {}) });
    return { 'image/svg+xml': svg, 'text/plain': this.summary() };
  }

  /** A static snapshot (e.g. to keep after the live one). */
  snapshot(): Rendered {
    return new Rendered(this[MIME_BUNDLE]());
  }

  /** Trainer callbacks: train loss per step, validation loss per evaluation; shows on start. */
  callbacks(): { onStart: () => void; onStepEnd: (s: StepInfo) => void; onEval: (e: EvalInfo) => void; onEnd: (s: TrainSummary) => void } {
    return {
      onStart: () => void this.show(),
      onStepEnd: (s) => this.add(s.step, s.loss, 'train'),
      onEval: (e) => this.add(e.step, e.valLoss, 'validation'),
      onEnd: () => void this.finish(),
    };
  }
}

export function lossCurve(opts: LossCurveOptions = {}): LossCurve {
  return new LossCurve(opts);
}
