/**
 * Cutting special tokens out of the text before SentencePiece runs, as llama.cpp's
 * `tokenizer_st_partition`: special tokens are taken longest first; each occurrence splits a text
 * fragment into left text, the token and right text. A token with RSTRIP (LSTRIP) swallows the
 * whitespace after (before) it. Without `parseSpecial`, CONTROL and UNKNOWN tokens stay plain text;
 * USER_DEFINED ones are still cut out.
 */
import { Attr, CONTROL_MASK, type Vocab } from './vocab.ts';

/** A piece of the input: text in [start, end) of the original string, or one special token. */
export type Fragment = { kind: 'text'; start: number; end: number } | { kind: 'token'; id: number };

/** C `isspace` in the "C" locale, which llama.cpp uses for stripping. */
function isCSpace(c: number): boolean {
  return c === 0x20 || (c >= 0x09 && c <= 0x0d);
}

export function partitionSpecial(text: string, vocab: Vocab, parseSpecial: boolean): Fragment[] {
  if (text.length === 0) return [];
  let frags: Fragment[] = [{ kind: 'text', start: 0, end: text.length }];
  for (const id of vocab.specialOrder) {
    const attr = vocab.attrs[id]!;
    if (!parseSpecial && (attr & CONTROL_MASK)) continue;
    const piece = vocab.tokens[id]!;
    // Cheap test first: most inputs hold no special token at all.
    if (text.indexOf(piece) < 0) continue;
    const nextFrags: Fragment[] = [];
    for (const f of frags) {
      if (f.kind === 'token') {
        nextFrags.push(f);
        continue;
      }
      let from = f.start;
      const end = f.end;
      for (;;) {
        const at = text.indexOf(piece, from);
        if (at < 0 || at + piece.length > end) {
          if (from < end) nextFrags.push({ kind: 'text', start: from, end });
          break;
        }
        let leftEnd = at;
        if (attr & Attr.LSTRIP) while (leftEnd > from && isCSpace(text.charCodeAt(leftEnd - 1))) leftEnd--;
        if (leftEnd > from) nextFrags.push({ kind: 'text', start: from, end: leftEnd });
        nextFrags.push({ kind: 'token', id });
        from = at + piece.length;
        if (attr & Attr.RSTRIP) while (from < end && isCSpace(text.charCodeAt(from))) from++;
      }
    }
    frags = nextFrags;
  }
  return frags;
}
