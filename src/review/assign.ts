/**
 * Which reviewer sees which item. N reviewers × K items give N·K ratings; agreement needs items rated
 * twice or more, so:
 *   - N·K >= 2·M (M items): every item, each rated ⌊N·K/M⌋ or ⌈N·K/M⌉ times;
 *   - otherwise m = ⌊N·K/2⌋ items (drawn round-robin across conditions, so each condition keeps its
 *     share), each rated twice or more;
 *   - N = 1: K items, rated once (no agreement possible; said in the notes).
 * The chosen items are shuffled into a cycle and reviewer j takes the K items starting at j·K
 * (mod m): K <= m, so no reviewer sees an item twice, and the N·K slots wrap the cycle evenly.
 * Every packet's order is then shuffled on its own stream (order effects average out).
 */
import { CliniloraError } from '../errors.ts';
import type { Rng } from '../util/random.ts';

export interface Assignment<T> {
  /** The items chosen, in cycle order. */
  chosen: T[];
  /** packets[j] = indices into `chosen`, in the order reviewer j sees them. */
  packets: number[][];
  notes: string[];
}

/** `groups` (e.g. items per condition) → the assignment; all randomness from `rng`. */
export function assignItems<T>(groups: readonly (readonly T[])[], reviewers: number, perReviewer: number, rng: Rng): Assignment<T> {
  const M = groups.reduce((s, g) => s + g.length, 0);
  const N = reviewers;
  const K = perReviewer;
  if (!Number.isInteger(N) || N < 1) throw new CliniloraError('E_ARG', 'bad number of reviewers', { field: '--reviewers', expected: 'an integer >= 1', found: String(N) });
  if (!Number.isInteger(K) || K < 1) throw new CliniloraError('E_ARG', 'bad number of items per reviewer', { field: '--per-reviewer', expected: 'an integer >= 1', found: String(K) });
  if (M === 0) throw new CliniloraError('E_MISSING', 'nothing to review: the predictions hold no generated answers', { expected: 'rows with a question and an answer' });
  if (K > M) throw new CliniloraError('E_ARG', `only ${M} items can be reviewed`, { field: '--per-reviewer', expected: `<= ${M}`, found: String(K) });
  const notes: string[] = [];
  let m: number;
  if (N === 1) {
    m = K;
    notes.push('one reviewer: every item is rated once, so inter-rater agreement cannot be computed');
  } else if (N * K >= 2 * M) {
    m = M;
  } else {
    m = Math.floor((N * K) / 2);
    notes.push(`${N} reviewers x ${K} items cannot rate all ${M} items twice: ${m} items drawn (balanced across conditions), each rated twice or more`);
  }
  // Round-robin over the shuffled groups: the first m keep each group's share.
  const pools = groups.map((g, i) => rng.split(`group-${i}`).shuffle([...g]));
  const drawn: T[] = [];
  for (let round = 0; drawn.length < m; round++) {
    for (const p of pools) if (round < p.length && drawn.length < m) drawn.push(p[round]!);
  }
  const chosen = rng.split('cycle').shuffle(drawn);
  const packets: number[][] = [];
  for (let j = 0; j < N; j++) {
    const mine = Array.from({ length: K }, (_, t) => (j * K + t) % m);
    packets.push(rng.split(`packet-${j}`).shuffle(mine));
  }
  return { chosen, packets, notes };
}
