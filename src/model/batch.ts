/**
 * Token batches: a rectangular [B, T] of integers, given as nested arrays or as a flat Int32Array
 * with its shape. Used for input ids, attention masks, label masks and positions.
 */
import { CliniloraError } from '../errors.ts';

export type TokenBatch = number[][] | { data: Int32Array; shape: [number, number] };

export interface FlatBatch {
  /** Row-major [B, T]. */
  data: Int32Array;
  B: number;
  T: number;
}

/** Flattens and checks a batch; `field` names it in errors. */
export function toFlat(x: TokenBatch, field: string): FlatBatch {
  if (Array.isArray(x)) {
    const B = x.length;
    const T = B > 0 ? x[0]!.length : 0;
    if (B === 0 || T === 0) {
      throw new CliniloraError('E_SHAPE', 'empty batch', { field, expected: 'at least one row of at least one token', found: `[${B}, ${T}]` });
    }
    const data = new Int32Array(B * T);
    for (let b = 0; b < B; b++) {
      const row = x[b]!;
      if (row.length !== T) {
        throw new CliniloraError('E_SHAPE', `row ${b} has another length (rows must be padded to one length)`, {
          field,
          expected: `${T} values`,
          found: `${row.length}`,
        });
      }
      for (let t = 0; t < T; t++) {
        const v = row[t]!;
        if (!Number.isInteger(v)) {
          throw new CliniloraError('E_ARG', `value at [${b}, ${t}] is not an integer`, { field, expected: 'an integer', found: String(v) });
        }
        data[b * T + t] = v;
      }
    }
    return { data, B, T };
  }
  const [B, T] = x.shape;
  if (x.data.length !== B * T || B <= 0 || T <= 0) {
    throw new CliniloraError('E_SHAPE', 'data does not match its shape', { field, expected: `${B}×${T} values`, found: `${x.data.length}` });
  }
  return { data: x.data, B, T };
}

/** Checks that `m` has the shape [B, T]. */
export function expectShape(m: FlatBatch, B: number, T: number, field: string): void {
  if (m.B !== B || m.T !== T) {
    throw new CliniloraError('E_SHAPE', 'shape does not match the input ids', { field, expected: `[${B}, ${T}]`, found: `[${m.B}, ${m.T}]` });
  }
}
