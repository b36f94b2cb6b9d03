/**
 * Writes a vocabulary as Hugging Face files: `tokenizer.json` in the shape HF's LlamaConverter
 * gives a SentencePiece model (BPE + byte fallback, merges made from the pieces and their scores)
 * and a matching `tokenizer_config.json`.
 */
import { join } from 'node:path';
import { writeFileAtomic } from '../util/atomic.ts';
import { PHI3_CHAT_TEMPLATE_JINJA } from './chat.ts';
import type { HfAddedToken, HfTokenizerJson } from './hf-json.ts';
import type { Phi3Tokenizer } from './tokenizer.ts';
import { Attr, SPECIAL_MASK, type Vocab } from './vocab.ts';

/**
 * Merges as HF's SentencePieceExtractor derives them: for every piece, each split into two pieces
 * that are both in the vocabulary (ordered by their ids), all merges then stably sorted by the
 * piece's score, highest first.
 */
export function deriveMerges(pieces: readonly string[], scores: ArrayLike<number>): [string, string][] {
  const idOf = new Map<string, number>();
  pieces.forEach((p, i) => idOf.set(p, i));
  const all: { l: string; r: string; score: number }[] = [];
  pieces.forEach((piece, i) => {
    const cps = Array.from(piece); // Python slices by code point
    const local: { l: string; r: string; li: number; ri: number }[] = [];
    for (let k = 1; k < cps.length; k++) {
      const l = cps.slice(0, k).join(''), r = cps.slice(k).join('');
      const li = idOf.get(l), ri = idOf.get(r);
      if (li !== undefined && ri !== undefined) local.push({ l, r, li, ri });
    }
    local.sort((a, b) => a.li - b.li || a.ri - b.ri);
    for (const m of local) all.push({ l: m.l, r: m.r, score: scores[i]! });
  });
  all.sort((a, b) => b.score - a.score); // Array.prototype.sort is stable
  return all.map((m) => [m.l, m.r]);
}

/** Ids of the SentencePiece model proper: everything up to the last normal or byte piece. */
function modelPieceCount(vocab: Vocab): number {
  let last = -1;
  vocab.attrs.forEach((a, i) => { if (a & (Attr.NORMAL | Attr.BYTE)) last = i; });
  return last + 1;
}

/** Every token matched before SentencePiece (control, user-defined, unknown) as an HF added token. */
function addedTokens(vocab: Vocab): HfAddedToken[] {
  const added: HfAddedToken[] = [];
  vocab.attrs.forEach((a, id) => {
    if (!(a & SPECIAL_MASK)) return;
    added.push({
      id,
      content: vocab.tokens[id]!,
      single_word: false,
      lstrip: (a & Attr.LSTRIP) !== 0,
      rstrip: (a & Attr.RSTRIP) !== 0,
      normalized: false,
      // USER_DEFINED tokens are HF's non-special added tokens (Phi-3's `</s>`).
      special: (a & Attr.USER_DEFINED) === 0,
    });
  });
  return added;
}

export function toTokenizerJson(tokenizer: Phi3Tokenizer): HfTokenizerJson {
  const vocab = tokenizer.vocab;
  const nModel = modelPieceCount(vocab);
  const pieces = vocab.tokens.slice(0, nModel);
  const modelVocab: Record<string, number> = {};
  pieces.forEach((p, i) => { modelVocab[p] = i; });

  const added = addedTokens(vocab);

  const replaceSpace = { type: 'Replace', pattern: { String: ' ' }, content: '▁' };
  const bos = vocab.tokens[vocab.bosId]!;
  const seq = (x: string) => ({ Sequence: { id: x, type_id: 0 } });
  const bosTok = { SpecialToken: { id: bos, type_id: 0 } };
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: vocab.spacePrefix === 'always'
      ? { type: 'Sequence', normalizers: [{ type: 'Prepend', prepend: '▁' }, replaceSpace] }
      : replaceSpace,
    pre_tokenizer: null,
    post_processor: {
      type: 'TemplateProcessing',
      single: vocab.addBos ? [bosTok, seq('A')] : [seq('A')],
      pair: vocab.addBos ? [bosTok, seq('A'), { SpecialToken: { id: bos, type_id: 1 } }, { Sequence: { id: 'B', type_id: 1 } }] : [seq('A'), { Sequence: { id: 'B', type_id: 1 } }],
      special_tokens: vocab.addBos ? { [bos]: { id: bos, ids: [vocab.bosId], tokens: [bos] } } : {},
    },
    decoder: {
      type: 'Sequence',
      decoders: [
        { type: 'Replace', pattern: { String: '▁' }, content: ' ' },
        { type: 'ByteFallback' },
        { type: 'Fuse' },
        ...(vocab.spacePrefix === 'always' ? [{ type: 'Strip', content: ' ', start: 1, stop: 0 }] : []),
      ],
    },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: vocab.tokens[vocab.unkId]!,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: true,
      byte_fallback: true,
      ignore_merges: false,
      vocab: modelVocab,
      merges: deriveMerges(pieces, vocab.scores.subarray(0, nModel)).map(([l, r]) => `${l} ${r}`),
    },
  };
}

/** tokenizer_config.json for the same tokenizer, with Phi-3's chat template as clinilora renders it. */
export function toTokenizerConfig(tokenizer: Phi3Tokenizer): Record<string, unknown> {
  const v = tokenizer.vocab;
  const decoder: Record<string, Omit<HfAddedToken, 'id'>> = {};
  for (const t of addedTokens(v)) {
    const { id, ...rest } = t;
    decoder[String(id)] = rest;
  }
  return {
    add_bos_token: v.addBos,
    add_eos_token: v.addEos,
    added_tokens_decoder: decoder,
    bos_token: v.tokens[v.bosId],
    chat_template: PHI3_CHAT_TEMPLATE_JINJA,
    clean_up_tokenization_spaces: false,
    eos_token: v.tokens[v.eosId],
    pad_token: v.tokens[v.padId],
    unk_token: v.tokens[v.unkId],
    tokenizer_class: 'LlamaTokenizer',
  };
}

/** Writes tokenizer.json and tokenizer_config.json into `dir` (each atomically). */
export function writeTokenizerFiles(tokenizer: Phi3Tokenizer, dir: string): void {
  writeFileAtomic(join(dir, 'tokenizer.json'), JSON.stringify(toTokenizerJson(tokenizer), null, 2));
  writeFileAtomic(join(dir, 'tokenizer_config.json'), JSON.stringify(toTokenizerConfig(tokenizer), null, 2));
}
