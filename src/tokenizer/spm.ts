/**
 * SentencePiece-BPE over one text fragment, the way llama.cpp's `llm_tokenizer_spm_session` does it:
 * start from single characters, repeatedly merge the adjacent pair whose concatenation is a
 * vocabulary piece with the highest score (ties: leftmost pair first), then emit each final symbol as
 * its piece or, when it is not one, as `<0xXX>` byte tokens of its UTF-8 encoding.
 */
import type { Vocab } from './vocab.ts';

const SPACE_MARK = '\u2581'; // ▁
const CACHE_MAX_ENTRIES = 50_000;
const CACHE_MAX_CHUNK = 64;

/** A binary max-heap of candidate merges, ordered by score then by left position (smaller first). */
class MergeHeap {
  private score: number[] = [];
  private left: number[] = [];
  private right: number[] = [];
  private size: number[] = [];
  private merged: number[] = [];
  length = 0;

  clear(): void {
    this.length = 0;
  }

  private before(i: number, j: number): boolean {
    const si = this.score[i]!, sj = this.score[j]!;
    return si > sj || (si === sj && this.left[i]! < this.left[j]!);
  }

  private swap(i: number, j: number): void {
    const s = this.score[i]!, l = this.left[i]!, r = this.right[i]!, z = this.size[i]!, m = this.merged[i]!;
    this.score[i] = this.score[j]!; this.left[i] = this.left[j]!; this.right[i] = this.right[j]!; this.size[i] = this.size[j]!;
    this.merged[i] = this.merged[j]!;
    this.score[j] = s; this.left[j] = l; this.right[j] = r; this.size[j] = z; this.merged[j] = m;
  }

  push(score: number, left: number, right: number, size: number, merged: number): void {
    let i = this.length++;
    this.score[i] = score; this.left[i] = left; this.right[i] = right; this.size[i] = size; this.merged[i] = merged;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.before(i, p)) break;
      this.swap(i, p);
      i = p;
    }
  }

  /** Removes the top entry and writes it to `out` as [left, right, size, merged id]. */
  pop(out: Int32Array): void {
    out[0] = this.left[0]!; out[1] = this.right[0]!; out[2] = this.size[0]!; out[3] = this.merged[0]!;
    const last = --this.length;
    if (last === 0) return;
    this.score[0] = this.score[last]!; this.left[0] = this.left[last]!; this.right[0] = this.right[last]!; this.size[0] = this.size[last]!;
    this.merged[0] = this.merged[last]!;
    let i = 0;
    for (;;) {
      const a = 2 * i + 1, b = a + 1;
      let m = i;
      if (a < last && this.before(a, m)) m = a;
      if (b < last && this.before(b, m)) m = b;
      if (m === i) break;
      this.swap(i, m);
      i = m;
    }
  }
}

/**
 * Every (left id, right id) -> merged id whose concatenation is a mergeable piece. Looking pairs up by
 * id avoids building a string for each candidate (3-4x faster). It gives llama.cpp's result only if
 * every character inside a mergeable piece is itself a piece (else llama.cpp could merge an
 * out-of-vocabulary character); `undefined` when that does not hold.
 */
export interface PairIndex {
  /** key: left * vocabSize + right */
  merges: Map<number, number>;
  /** code point -> id of the one-character piece */
  charId: Map<number, number>;
}

export function buildPairIndex(vocab: Vocab): PairIndex | undefined {
  const n = vocab.size;
  const charId = new Map<number, number>();
  vocab.tokens.forEach((t, id) => {
    const cp = t.codePointAt(0)!;
    if (t.length === (cp > 0xffff ? 2 : 1) && vocab.tokenToId.get(t) === id) charId.set(cp, id);
  });
  const merges = new Map<number, number>();
  for (let id = 0; id < n; id++) {
    const t = vocab.tokens[id]!;
    if (Number.isNaN(vocab.scores[id]!) || vocab.tokenToId.get(t) !== id) continue;
    const cps = Array.from(t);
    if (cps.length < 2) continue;
    if (cps.some((c) => !charId.has(c.codePointAt(0)!))) return undefined;
    let cut = 0;
    for (let k = 1; k < cps.length; k++) {
      cut += cps[k - 1]!.length;
      const l = vocab.tokenToId.get(t.slice(0, cut)), r = vocab.tokenToId.get(t.slice(cut));
      if (l !== undefined && r !== undefined) merges.set(l * n + r, id);
    }
  }
  return { merges, charId };
}

export interface SpmEncoderOptions {
  /** Look pairs up by string, as llama.cpp does, even when the id index would do. For tests. */
  stringPairs?: boolean;
}

export class SpmEncoder {
  private readonly vocab: Vocab;
  private readonly pairs: PairIndex | undefined;
  private readonly encoder = new TextEncoder();
  private readonly cache = new Map<string, readonly number[]>();
  private readonly heap = new MergeHeap();
  private readonly top = new Int32Array(4);
  // Symbols of one chunk: start and length (UTF-16 units), id (-1: a character outside the
  // vocabulary) and the linked list.
  private start: number[] = [];
  private len: number[] = [];
  private sid: number[] = [];
  private prev: number[] = [];
  private next: number[] = [];

  constructor(vocab: Vocab, options: SpmEncoderOptions = {}) {
    this.vocab = vocab;
    this.pairs = options.stringPairs === true ? undefined : buildPairIndex(vocab);
  }

  /**
   * Appends the ids of `text` (spaces already turned into ▁ by the caller) to `out`. With a
   * vocabulary where no piece holds ▁ after another character, the text is cut before each ▁-run
   * and every chunk is tokenized (and cached) on its own; the result is the same.
   */
  encode(text: string, out: number[]): void {
    if (!this.vocab.splitAtSpace) {
      this.encodeChunk(text, out);
      return;
    }
    let from = 0;
    for (let i = 1; i < text.length; i++) {
      if (text.charCodeAt(i) === 0x2581 && text.charCodeAt(i - 1) !== 0x2581) {
        this.encodeCached(text.slice(from, i), out);
        from = i;
      }
    }
    this.encodeCached(text.slice(from), out);
  }

  private encodeCached(chunk: string, out: number[]): void {
    if (chunk.length > CACHE_MAX_CHUNK) {
      this.encodeChunk(chunk, out);
      return;
    }
    let ids = this.cache.get(chunk);
    if (ids === undefined) {
      const fresh: number[] = [];
      this.encodeChunk(chunk, fresh);
      if (this.cache.size >= CACHE_MAX_ENTRIES) this.cache.clear();
      this.cache.set(chunk, fresh);
      ids = fresh;
    }
    for (let i = 0; i < ids.length; i++) out.push(ids[i]!);
  }

  private encodeChunk(text: string, out: number[]): void {
    if (text.length === 0) return;
    const { start, len, sid, prev, next, vocab } = this;
    const charId = this.pairs?.charId;
    // One symbol a code point (a surrogate pair is one symbol, as one UTF-8 character in llama.cpp).
    let n = 0;
    for (let off = 0; off < text.length;) {
      const cp = text.codePointAt(off)!;
      const w = cp > 0xffff ? 2 : 1;
      start[n] = off; len[n] = w; prev[n] = n - 1; next[n] = n + 1;
      sid[n] = (charId !== undefined ? charId.get(cp) : vocab.tokenToId.get(text.substr(off, w))) ?? -1;
      off += w;
      n++;
    }
    next[n - 1] = -1;

    const heap = this.heap;
    heap.clear();
    for (let i = 1; i < n; i++) this.tryAddPair(text, i - 1, i);

    const top = this.top;
    while (heap.length > 0) {
      heap.pop(top);
      const l = top[0]!, r = top[1]!;
      // Stale entry: one side was merged away or has grown since the pair was queued.
      if (len[l] === 0 || len[r] === 0 || len[l]! + len[r]! !== top[2]) continue;
      len[l] = len[l]! + len[r]!;
      len[r] = 0;
      sid[l] = top[3]!;
      next[l] = next[r]!;
      if (next[r]! >= 0) prev[next[r]!] = l;
      this.tryAddPair(text, prev[l]!, l);
      this.tryAddPair(text, l, next[l]!);
    }

    for (let i = 0; i !== -1; i = next[i]!) {
      if (sid[i]! >= 0) {
        out.push(sid[i]!);
      } else {
        // Merged symbols are always pieces, so this is one character outside the vocabulary.
        for (const b of this.encoder.encode(text.substr(start[i]!, len[i]!))) out.push(vocab.byteToId[b]!);
      }
    }
  }

  private tryAddPair(text: string, l: number, r: number): void {
    if (l < 0 || r < 0) return;
    let id: number | undefined;
    if (this.pairs !== undefined) {
      const a = this.sid[l]!, b = this.sid[r]!;
      if (a < 0 || b < 0) return;
      id = this.pairs.merges.get(a * this.vocab.size + b);
    } else {
      id = this.vocab.tokenToId.get(text.substr(this.start[l]!, this.len[l]! + this.len[r]!));
    }
    if (id === undefined) return;
    const score = this.vocab.scores[id]!;
    if (Number.isNaN(score)) return;
    this.heap.push(score, l, r, this.len[l]! + this.len[r]!, id);
  }
}

/** Spaces to ▁, as llama.cpp's `llama_escape_whitespace` (only U+0020; tabs and newlines stay). */
export function escapeSpaces(text: string): string {
  return text.indexOf(' ') < 0 ? text : text.replaceAll(' ', SPACE_MARK);
}
