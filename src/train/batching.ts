/**
 * Samples → token ids with an answer-only label mask → right-padded batches grouped by length.
 *
 * Labels: 1 on the assistant's content and its closing `<|end|>` (what the model must write and
 * where generation stops); 0 on the system and user turns, on the `<|assistant|>` tag (and the
 * template's newline after it, when the tokenizer keeps one), on anything after that `<|end|>`, and
 * on padding. Token t with label 1 is predicted from position t − 1 (src/model/loss.ts).
 *
 * Truncation when the chat is longer than `maxLength` (policy 'prompt', the default): the answer is
 * kept whole and tokens are cut from the END of the user turn's content (its `<|user|>` tag and its
 * `<|end|>` stay), so the template stays well formed and every target survives; only when the answer
 * plus the template alone do not fit is the answer cut on the right (its `<|end|>` then lost:
 * `truncated: 'answer'`). Policy 'right' cuts the whole sequence on the right (HF's default).
 */
import { CliniloraError } from '../errors.ts';
import type { Rng } from '../util/random.ts';
import type { Phi3Tokenizer } from '../tokenizer/index.ts';
import { sampleMessages } from '../data/tokens.ts';
import type { Sample } from '../data/sample.ts';

export interface EncodeSampleOptions {
  /** Longest sequence kept (tokens). */
  maxLength: number;
  /** 'prompt' (default): shorten the user turn; 'right': cut the sequence's end. */
  truncation?: 'prompt' | 'right';
  /**
   * Loss weight of the answer's first line (up to and including its first newline token), relative
   * to 1 for the rest of the answer. The auditor's decision is one line (`Category: …`) in a ~100-token
   * answer, so a plain mean gives it ~5% of the gradient; weighting it is the usual remedy. 1 (default)
   * = a plain mean and no `weights` on the sample.
   */
  firstLineWeight?: number;
}

export interface EncodedSample {
  /** Token ids [T]. */
  ids: Int32Array;
  /** 1 = loss target (answer tokens and the answer's `<|end|>`), else 0; [T]. */
  labels: Uint8Array;
  /** Tokens before the first target. */
  promptLength: number;
  /** Number of targets. */
  answerLength: number;
  /** What truncation did: nothing, shortened the user turn, or cut into the answer. */
  truncated: 'none' | 'prompt' | 'answer';
  /** The sample's id, when it had one. */
  id?: string;
  /** Per-token loss weights [T] aligned with `labels` (only read where labels is 1); absent = all 1. */
  weights?: Float32Array;
}

/** Encodes one sample in Phi-3's chat format with its answer-only label mask. */
export function encodeSample(sample: Pick<Sample, 'system' | 'user' | 'answer'> & { id?: string }, tokenizer: Phi3Tokenizer, opts: EncodeSampleOptions): EncodedSample {
  const maxLength = opts.maxLength;
  if (!Number.isInteger(maxLength) || maxLength < 2) {
    throw new CliniloraError('E_ARG', 'maxLength must be an integer of at least 2', { field: 'maxLength', expected: '≥ 2', found: String(maxLength) });
  }
  const { ids, spans } = tokenizer.encodeChatWithSpans(sampleMessages(sample));
  const assistant = spans[spans.length - 1]!;
  const user = spans[spans.length - 2]!;
  const endId = tokenizer.tokenToId('<|end|>');
  // Content starts after the `<|assistant|>\n` prefix as this tokenizer encodes it (Phi-3's vocab
  // folds the newline into the special token, so usually one token).
  const prefix = tokenizer.encode('<|assistant|>\n', { parseSpecial: true }).length;
  const ansStart = assistant.start + prefix;
  let ansEnd = assistant.end; // exclusive; trim what follows the closing <|end|>
  for (let i = assistant.end - 1; i >= ansStart; i--) {
    if (ids[i] === endId) {
      ansEnd = i + 1;
      break;
    }
  }
  let seq = ids.slice(0, ansEnd);
  let start = ansStart;
  let truncated: EncodedSample['truncated'] = 'none';
  if (seq.length > maxLength) {
    const excess = seq.length - maxLength;
    const userContent = user.end - 1 - (user.start + 1); // tokens between `<|user|>` and its `<|end|>`
    if ((opts.truncation ?? 'prompt') === 'prompt' && excess <= userContent) {
      const cutAt = user.end - 1 - excess;
      seq = [...seq.slice(0, cutAt), ...seq.slice(user.end - 1)];
      start -= excess;
      truncated = 'prompt';
    } else {
      seq = seq.slice(0, maxLength);
      truncated = 'answer';
    }
  }
  if (start >= seq.length) {
    throw new CliniloraError('E_ARG', 'no answer token fits in maxLength', {
      field: 'maxLength', expected: `more than ${start} tokens (the prompt)`, found: String(maxLength), hint: "raise maxLength or use truncation: 'prompt'",
    });
  }
  const labels = new Uint8Array(seq.length);
  labels.fill(1, start);
  const out: EncodedSample = { ids: Int32Array.from(seq), labels, promptLength: start, answerLength: seq.length - start, truncated };
  if (sample.id !== undefined) out.id = sample.id;
  const w = opts.firstLineWeight ?? 1;
  if (!(w > 0) || !Number.isFinite(w)) {
    throw new CliniloraError('E_ARG', 'firstLineWeight must be a positive number', { field: 'firstLineWeight', expected: '> 0', found: String(w) });
  }
  if (w !== 1) {
    const weights = new Float32Array(seq.length).fill(1);
    // Phi-3 encodes '\n' as the byte token <0x0A>; the first line ends at the first one in the answer.
    const newline = tokenizer.tokenToId('<0x0A>');
    let end = seq.length;
    for (let i = start; i < seq.length; i++) {
      if (seq[i] === newline) {
        end = i + 1;
        break;
      }
    }
    weights.fill(w, start, end);
    out.weights = weights;
  }
  return out;
}

/** A right-padded batch, row-major [B, T]. */
export interface Batch {
  B: number;
  T: number;
  /** [B·T] ids, padding = padId. */
  ids: Int32Array;
  /** [B·T] 1 = loss target. */
  labels: Int32Array;
  /** [B·T] 1 = real token, 0 = padding (right padding). */
  attentionMask: Int32Array;
  /** Real (non-padding) tokens. */
  tokens: number;
  /** Loss targets. */
  targets: number;
  /** Positions of the samples in the encoded list. */
  indices: number[];
  /** [B·T] per-token loss weights, present when any sample has weights (padding and prompt: 1, unread). */
  labelWeights?: Float32Array;
}

/** Right-pads the samples at `indices` into one batch. */
export function collate(encoded: readonly EncodedSample[], indices: readonly number[], padId: number): Batch {
  if (indices.length === 0) throw new CliniloraError('E_ARG', 'a batch needs at least one sample', { field: 'indices' });
  const rows = indices.map((i) => {
    const e = encoded[i];
    if (e === undefined) throw new CliniloraError('E_ARG', 'sample index out of range', { field: 'indices', expected: `0..${encoded.length - 1}`, found: String(i) });
    return e;
  });
  const B = rows.length;
  const T = Math.max(...rows.map((r) => r.ids.length));
  const ids = new Int32Array(B * T).fill(padId);
  const labels = new Int32Array(B * T);
  const attentionMask = new Int32Array(B * T);
  let tokens = 0;
  let targets = 0;
  const labelWeights = rows.some((r) => r.weights !== undefined) ? new Float32Array(B * T).fill(1) : undefined;
  rows.forEach((r, b) => {
    ids.set(r.ids, b * T);
    if (labelWeights !== undefined && r.weights !== undefined) labelWeights.set(r.weights, b * T);
    attentionMask.fill(1, b * T, b * T + r.ids.length);
    for (let t = 1; t < r.labels.length; t++) if (r.labels[t] !== 0) { labels[b * T + t] = 1; targets++; }
    tokens += r.ids.length;
  });
  return { B, T, ids, labels, attentionMask, tokens, targets, indices: [...indices], ...(labelWeights !== undefined ? { labelWeights } : {}) };
}

export interface PlanOptions {
  batchSize: number;
  /** Shuffle stream; consumed once per call (per epoch). Omit for a fixed order (validation). */
  rng?: Rng;
  /** Group similar lengths into a batch (less padding). Default true. */
  byLength?: boolean;
}

/**
 * One epoch's batches as sample indices: shuffle, then (byLength) a stable sort by length so equal
 * lengths stay shuffled, cut into batches of `batchSize` (the last may be smaller), then the batch
 * order shuffled. Deterministic for an rng state; each call draws a new order.
 */
export function planBatches(lengths: readonly number[], opts: PlanOptions): number[][] {
  const { batchSize } = opts;
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new CliniloraError('E_ARG', 'batchSize must be a positive integer', { field: 'batchSize', found: String(batchSize) });
  }
  let order = lengths.map((_, i) => i);
  if (opts.rng !== undefined) opts.rng.shuffle(order);
  if (opts.byLength ?? true) order = order.map((i, k) => [i, k] as const).sort((a, b) => lengths[a[0]]! - lengths[b[0]]! || a[1] - b[1]).map(([i]) => i);
  const batches: number[][] = [];
  for (let s = 0; s < order.length; s += batchSize) batches.push(order.slice(s, s + batchSize));
  if (opts.rng !== undefined) opts.rng.shuffle(batches);
  return batches;
}

export interface MakeBatchesOptions extends PlanOptions {
  /** Padding id (Phi-3: 32000, `<|endoftext|>`). */
  padId: number;
}

/** One epoch of right-padded batches grouped by length (see planBatches). */
export function makeBatches(encoded: readonly EncodedSample[], opts: MakeBatchesOptions): Batch[] {
  return planBatches(encoded.map((e) => e.ids.length), opts).map((ix) => collate(encoded, ix, opts.padId));
}
