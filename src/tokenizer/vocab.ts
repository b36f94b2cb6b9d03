/**
 * The vocabulary both loaders produce and the encoder reads: pieces, SentencePiece scores and
 * per-token attributes, with the attribute rules llama.cpp applies at load time (llama-vocab.cpp),
 * so that a vocabulary from a GGUF and one from a tokenizer.json behave the same.
 */
import { CliniloraError } from '../errors.ts';

/** GGUF `tokenizer.ggml.token_type` codes (llama.cpp `llama_token_type`). */
export const TokenType = {
  UNDEFINED: 0,
  NORMAL: 1,
  UNKNOWN: 2,
  CONTROL: 3,
  USER_DEFINED: 4,
  UNUSED: 5,
  BYTE: 6,
} as const;

/** Attribute bits, as llama.cpp's `llama_token_attr`. */
export const Attr = {
  UNDEFINED: 0,
  UNKNOWN: 1 << 0,
  UNUSED: 1 << 1,
  NORMAL: 1 << 2,
  CONTROL: 1 << 3,
  USER_DEFINED: 1 << 4,
  BYTE: 1 << 5,
  NORMALIZED: 1 << 6,
  LSTRIP: 1 << 7,
  RSTRIP: 1 << 8,
  SINGLE_WORD: 1 << 9,
} as const;

/** Tokens recognised in the text before the SentencePiece pass (llama.cpp `cache_special_tokens`). */
export const SPECIAL_MASK = Attr.CONTROL | Attr.USER_DEFINED | Attr.UNKNOWN;
/** Tokens that are only recognised, and only rendered, when special tokens are on. */
export const CONTROL_MASK = Attr.CONTROL | Attr.UNKNOWN;

/**
 * Whether a dummy "▁" goes before every text fragment that starts the input or follows a special
 * token ('always': llama.cpp SPM with add_space_prefix, HF's legacy Prepend("▁") normalizer), or never.
 */
export type SpacePrefix = 'always' | 'never';

export interface VocabSpec {
  tokens: string[];
  scores: ArrayLike<number>;
  /** One TokenType code a token. */
  types: ArrayLike<number>;
  bosId: number;
  eosId: number;
  unkId: number;
  padId: number;
  addBos: boolean;
  addEos: boolean;
  spacePrefix: SpacePrefix;
  chatTemplate?: string;
  /** Extra attribute bits by id (from tokenizer.json `rstrip`/`lstrip`), or-ed after the type. */
  extraAttrs?: Map<number, number>;
  /** Ids whose score must not be used for merging (tokens no BPE merge produces). */
  unmergeable?: Set<number>;
  /** Name of the file the vocabulary came from, for error messages. */
  source: string;
}

/**
 * Texts llama.cpp forces to CONTROL because it treats them as end-of-generation tokens (its EOG list
 * in llama-vocab.cpp). Phi-3's `</s>` is USER_DEFINED in the GGUF; llama.cpp makes it CONTROL, so it
 * is not matched in text unless special tokens are parsed. Only the Phi-3/Llama entries are kept.
 */
const EOG_TEXTS = new Set(['<|end|>', '<|endoftext|>', '</s>', '<|eot_id|>', '<|im_end|>', '<|end_of_text|>']);

export class Vocab {
  readonly tokens: readonly string[];
  /** SentencePiece score a token; NaN where a token may not be produced by merging. */
  readonly scores: Float64Array;
  readonly attrs: Uint16Array;
  readonly tokenToId: ReadonlyMap<string, number>;
  readonly bosId: number;
  readonly eosId: number;
  readonly unkId: number;
  readonly padId: number;
  readonly addBos: boolean;
  readonly addEos: boolean;
  readonly spacePrefix: SpacePrefix;
  readonly chatTemplate: string | undefined;
  readonly source: string;
  /** Special-token ids in the order llama.cpp matches them: longest text first (ties by id). */
  readonly specialOrder: readonly number[];
  /** byte value -> id of its `<0xXX>` token. */
  readonly byteToId: Int32Array;
  /**
   * True when no token holds "▁" after another character: then merging never crosses the start of a
   * "▁"-run and the encoder may cut the text there and cache the pieces (a large speed-up).
   */
  readonly splitAtSpace: boolean;

  constructor(spec: VocabSpec) {
    const n = spec.tokens.length;
    const where = { file: spec.source };
    if (n === 0) throw new CliniloraError('E_TOKENIZER', 'vocabulary is empty', { ...where, field: 'tokens' });
    if (spec.scores.length < n || spec.types.length < n) {
      throw new CliniloraError('E_TOKENIZER', 'scores/types shorter than the token list', {
        ...where, field: spec.scores.length < n ? 'scores' : 'token_type', expected: `${n}`,
        found: `${Math.min(spec.scores.length, spec.types.length)}`,
      });
    }
    // An empty piece would match everywhere; llama.cpp renames it the same way.
    const tokens = spec.tokens.map((t, i) => (t === '' ? `[EMPTY_${i}]` : t));
    this.tokens = tokens;
    this.source = spec.source;
    this.scores = new Float64Array(n);
    this.attrs = new Uint16Array(n);
    const map = new Map<string, number>();
    for (let i = 0; i < n; i++) {
      // Later duplicates win, as in llama.cpp's token_to_id[word] = i.
      map.set(tokens[i]!, i);
      this.scores[i] = spec.unmergeable?.has(i) ? Number.NaN : spec.scores[i]!;
      this.attrs[i] = typeToAttr(spec.types[i]!) | (spec.extraAttrs?.get(i) ?? 0);
      if (EOG_TEXTS.has(tokens[i]!)) this.attrs[i]! |= Attr.CONTROL;
    }
    this.tokenToId = map;
    for (const [field, id] of [['bos', spec.bosId], ['eos', spec.eosId], ['unk', spec.unkId], ['pad', spec.padId]] as const) {
      if (!Number.isInteger(id) || id < 0 || id >= n) {
        throw new CliniloraError('E_TOKENIZER', `${field} token id out of range`, {
          ...where, field: `${field}_token_id`, expected: `0..${n - 1}`, found: `${id}`,
        });
      }
    }
    this.bosId = spec.bosId;
    this.eosId = spec.eosId;
    this.unkId = spec.unkId;
    this.padId = spec.padId;
    this.addBos = spec.addBos;
    this.addEos = spec.addEos;
    this.spacePrefix = spec.spacePrefix;
    this.chatTemplate = spec.chatTemplate;

    const special: number[] = [];
    for (let i = 0; i < n; i++) if (this.attrs[i]! & SPECIAL_MASK) special.push(i);
    // llama.cpp sorts by byte length; ties (in any order there) never overlap in Phi-3's set.
    const bytes = (t: string): number => Buffer.byteLength(t, 'utf8');
    special.sort((a, b) => bytes(tokens[b]!) - bytes(tokens[a]!) || a - b);
    this.specialOrder = special;

    this.byteToId = new Int32Array(256);
    for (let b = 0; b < 256; b++) {
      const id = map.get(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`) ?? map.get(String.fromCharCode(b));
      if (id === undefined) {
        throw new CliniloraError('E_TOKENIZER', 'byte-fallback token missing', {
          ...where, field: 'tokens', expected: `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`, found: 'nothing',
          hint: 'only SentencePiece vocabularies with byte fallback are supported',
        });
      }
      this.byteToId[b] = id;
    }
    this.splitAtSpace = !tokens.some((t) => /[^▁]▁/u.test(t));
  }

  get size(): number {
    return this.tokens.length;
  }

  isControl(id: number): boolean {
    return (this.attrs[id]! & CONTROL_MASK) !== 0;
  }
}

function typeToAttr(type: number): number {
  switch (type) {
    case TokenType.UNKNOWN: return Attr.UNKNOWN;
    case TokenType.UNUSED: return Attr.UNUSED;
    case TokenType.NORMAL: return Attr.NORMAL;
    case TokenType.CONTROL: return Attr.CONTROL;
    case TokenType.USER_DEFINED: return Attr.USER_DEFINED;
    case TokenType.BYTE: return Attr.BYTE;
    default: return Attr.UNDEFINED;
  }
}

/**
 * llama.cpp's per-model fix-up for Phi-3 (its GGUFs carry no strip flags): every special token
 * swallows the whitespace after it, except `<unk>`, `<s>` and `<|endoftext|>`; `</s>` does too.
 * This matches the `rstrip` flags in Phi-3's own tokenizer_config.json. Returns extra attribute bits.
 */
export function phi3StripAttrs(tokens: readonly string[], types: ArrayLike<number>): Map<number, number> {
  const out = new Map<number, number>();
  const specialType = new Set<number>([TokenType.CONTROL, TokenType.USER_DEFINED, TokenType.UNKNOWN]);
  for (let i = 0; i < tokens.length; i++) {
    if (specialType.has(types[i]!) || tokens[i] === '</s>') out.set(i, Attr.RSTRIP);
  }
  for (let i = 0; i < tokens.length; i++) {
    if (tokens[i] === '<unk>' || tokens[i] === '<s>' || tokens[i] === '<|endoftext|>') out.delete(i);
  }
  return out;
}
