/**
 * Learning-rate schedules as transformers' get_{linear,cosine,constant}_schedule_with_warmup define
 * them, with an optional floor: for the update at step s (0-based) of `totalSteps`,
 *   warmup (s < w):  lr · s / w                       (w = ceil(warmupRatio · totalSteps))
 *   linear:          minLr + (lr − minLr) · (T − s) / (T − w)
 *   cosine:          minLr + (lr − minLr) · ½(1 + cos(π · (s − w) / (T − w)))
 * As in transformers, the very first update of a warm-up runs at lr 0.
 */
import { CliniloraError } from '../errors.ts';

export interface ScheduleConfig {
  lr: number;
  schedule: 'linear' | 'cosine' | 'constant';
  /** Share of the total steps spent warming up (0–1). */
  warmupRatio: number;
  /** Floor of the decay (default 0). */
  minLr?: number;
  totalSteps: number;
}

export function warmupSteps(c: Pick<ScheduleConfig, 'warmupRatio' | 'totalSteps'>): number {
  return Math.ceil(c.totalSteps * c.warmupRatio);
}

/** The learning rate of the update at 0-based step `s`. */
export function lrAt(s: number, c: ScheduleConfig): number {
  if (!(c.warmupRatio >= 0 && c.warmupRatio <= 1)) {
    throw new CliniloraError('E_CONFIG', 'warmupRatio must be in [0, 1]', { field: 'warmupRatio', found: String(c.warmupRatio) });
  }
  const w = warmupSteps(c);
  const T = c.totalSteps;
  const min = c.minLr ?? 0;
  if (s < w) return (c.lr * s) / Math.max(1, w);
  if (c.schedule === 'constant') return c.lr;
  const progress = (s - w) / Math.max(1, T - w);
  const factor = c.schedule === 'linear' ? Math.max(0, 1 - progress) : Math.max(0, 0.5 * (1 + Math.cos(Math.PI * progress)));
  return min + (c.lr - min) * factor;
}
