/**
 * Reads a Hugging Face `tokenizer.json` of a Llama-style SentencePiece BPE (Phi-3's: BPE model with
 * byte_fallback, normalizer Prepend("▁") + Replace(" ", "▁"), specials in added_tokens) and the
 * `tokenizer_config.json` beside it.
 *
 * The encoder works with SentencePiece scores, as llama.cpp does. HF's converter wrote the merges
 * sorted by the score of the merged piece, so the score is recovered as minus the rank of the first
 * merge that makes a piece; a piece that no merge makes is never built by merging.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { CliniloraError } from '../errors.ts';
import { Attr, TokenType, Vocab, type SpacePrefix } from './vocab.ts';

export interface HfAddedToken {
  id: number;
  content: string;
  single_word: boolean;
  lstrip: boolean;
  rstrip: boolean;
  normalized: boolean;
  special: boolean;
}

/** The parts of tokenizer.json this project reads and writes. */
export interface HfTokenizerJson {
  version: string;
  truncation: null;
  padding: null;
  added_tokens: HfAddedToken[];
  normalizer: unknown;
  pre_tokenizer: unknown;
  post_processor: unknown;
  decoder: unknown;
  model: {
    type: 'BPE';
    dropout: null;
    unk_token: string | null;
    continuing_subword_prefix: null;
    end_of_word_suffix: null;
    fuse_unk: boolean;
    byte_fallback: boolean;
    ignore_merges: boolean;
    vocab: Record<string, number>;
    merges: string[] | [string, string][];
  };
}

const BYTE_PIECE = /^<0x[0-9A-F]{2}>$/;

type Json = Record<string, unknown>;

function readJson(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new CliniloraError('E_IO', `cannot read: ${(err as Error).message}`, { file }, { cause: err });
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    const m = /position (\d+)/.exec((err as Error).message);
    const line = m ? text.slice(0, Number(m[1])).split('\n').length : undefined;
    throw new CliniloraError('E_FORMAT', `malformed JSON: ${(err as Error).message}`, { file, ...(line ? { line } : {}) }, { cause: err });
  }
}

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** `path` may be tokenizer.json itself or the directory holding it. */
export function resolveTokenizerJson(path: string): { json: string; config: string | undefined } {
  if (!existsSync(path)) {
    throw new CliniloraError('E_IO', 'tokenizer file or directory not found', { file: path, hint: 'pass tokenizer.json or the model directory' });
  }
  const json = statSync(path).isDirectory() ? join(path, 'tokenizer.json') : path;
  if (!existsSync(json)) throw new CliniloraError('E_IO', 'tokenizer.json not found', { file: json });
  const config = join(dirname(json), 'tokenizer_config.json');
  return { json, config: existsSync(config) ? config : undefined };
}

export function loadTokenizerJsonVocab(path: string): Vocab {
  const files = resolveTokenizerJson(path);
  const file = files.json;
  const root = readJson(file);
  const fail = (field: string, message: string, expected?: string, found?: unknown): never => {
    throw new CliniloraError('E_FORMAT', message, {
      file, field, ...(expected ? { expected } : {}), ...(found !== undefined ? { found: String(found) } : {}),
    });
  };
  if (!isObject(root)) return fail('(root)', 'tokenizer.json must hold an object', 'object', typeof root);
  const model = root['model'];
  if (!isObject(model)) return fail('model', 'missing model section', 'object', typeof model);
  if (model['type'] !== 'BPE') {
    throw new CliniloraError('E_UNSUPPORTED', 'only BPE tokenizer.json models are supported', {
      file, field: 'model.type', expected: '"BPE"', found: JSON.stringify(model['type'] ?? null),
    });
  }
  if (model['byte_fallback'] !== true) {
    throw new CliniloraError('E_UNSUPPORTED', 'the SentencePiece encoder needs byte fallback', {
      file, field: 'model.byte_fallback', expected: 'true', found: String(model['byte_fallback']),
    });
  }
  const vocabObj = model['vocab'];
  if (!isObject(vocabObj)) return fail('model.vocab', 'missing vocabulary', 'object of piece -> id', typeof vocabObj);

  // Gather pieces by id from the model vocabulary and the added tokens.
  const byId = new Map<number, string>();
  for (const [piece, id] of Object.entries(vocabObj)) {
    if (!Number.isInteger(id) || (id as number) < 0) fail(`model.vocab[${JSON.stringify(piece)}]`, 'id must be a non-negative integer', 'integer', id);
    byId.set(id as number, piece);
  }
  const added = root['added_tokens'] ?? [];
  if (!Array.isArray(added)) return fail('added_tokens', 'must be an array', 'array', typeof added);
  const addedById = new Map<number, HfAddedToken>();
  added.forEach((t: unknown, i) => {
    if (!isObject(t) || !Number.isInteger(t['id']) || typeof t['content'] !== 'string' || (t['content'] as string).length === 0) {
      fail(`added_tokens[${i}]`, 'needs an integer id and a non-empty content', '{id, content, ...}', JSON.stringify(t));
    }
    const tok = t as unknown as HfAddedToken;
    addedById.set(tok.id, tok);
    byId.set(tok.id, tok.content);
  });
  let n = 0;
  for (const id of byId.keys()) n = Math.max(n, id + 1);
  const tokens: string[] = [];
  for (let i = 0; i < n; i++) {
    const piece = byId.get(i);
    if (piece === undefined) return fail('model.vocab', 'token ids have a gap', `an entry for id ${i}`, 'none');
    tokens.push(piece);
  }

  const types = new Uint8Array(n);
  const extraAttrs = new Map<number, number>();
  for (let i = 0; i < n; i++) {
    const a = addedById.get(i);
    if (a !== undefined) {
      types[i] = a.special ? TokenType.CONTROL : TokenType.USER_DEFINED;
      const bits = (a.rstrip ? Attr.RSTRIP : 0) | (a.lstrip ? Attr.LSTRIP : 0);
      if (bits) extraAttrs.set(i, bits);
    } else {
      types[i] = BYTE_PIECE.test(tokens[i]!) ? TokenType.BYTE : TokenType.NORMAL;
    }
  }

  // Scores from merge ranks.
  const merges = model['merges'];
  if (!Array.isArray(merges)) return fail('model.merges', 'missing merges', 'array', typeof merges);
  const toId = new Map<string, number>();
  tokens.forEach((t, i) => toId.set(t, i));
  const scores = new Float64Array(n).fill(Number.NaN);
  merges.forEach((m: unknown, rank) => {
    let pair: unknown[] | undefined;
    if (typeof m === 'string') {
      const cut = m.indexOf(' ', 1); // a piece never holds a space (they are ▁), except " " itself
      pair = cut > 0 ? [m.slice(0, cut), m.slice(cut + 1)] : undefined;
    } else if (Array.isArray(m)) {
      pair = m;
    }
    if (pair === undefined || pair.length !== 2 || typeof pair[0] !== 'string' || typeof pair[1] !== 'string') {
      return fail(`model.merges[${rank}]`, 'a merge is "left right" or [left, right]', 'pair of pieces', JSON.stringify(m));
    }
    const id = toId.get(pair[0] + pair[1]);
    if (id === undefined) return fail(`model.merges[${rank}]`, 'merge result is not in the vocabulary', 'a known piece', pair[0] + pair[1]);
    if (Number.isNaN(scores[id]!)) scores[id] = -rank;
  });
  const unmergeable = new Set<number>();
  scores.forEach((s, i) => { if (Number.isNaN(s)) unmergeable.add(i); });

  const spacePrefix = readSpacePrefix(root, file);
  const config = files.config ? readConfig(files.config) : {};
  const idOf = (field: string, text: string | undefined, fallback: string): number => {
    const t = text ?? fallback;
    const id = toId.get(t);
    if (id === undefined) {
      throw new CliniloraError('E_TOKENIZER', 'special token not in the vocabulary', {
        file: text !== undefined && files.config ? files.config : file, field, expected: 'a known token', found: JSON.stringify(t),
      });
    }
    return id;
  };
  const unkName = typeof model['unk_token'] === 'string' ? (model['unk_token'] as string) : '<unk>';
  const eosId = idOf('eos_token', config.eos, '</s>');
  const post = JSON.stringify(root['post_processor'] ?? null);
  return new Vocab({
    tokens,
    scores,
    types,
    bosId: idOf('bos_token', config.bos, '<s>'),
    eosId,
    unkId: idOf('unk_token', config.unk, unkName),
    padId: config.pad !== undefined ? idOf('pad_token', config.pad, '') : eosId,
    addBos: config.addBos ?? post.includes('"<s>"'),
    addEos: config.addEos ?? false,
    spacePrefix,
    ...(config.chatTemplate !== undefined ? { chatTemplate: config.chatTemplate } : {}),
    extraAttrs,
    unmergeable,
    source: file,
  });
}

/** Reads the dummy-prefix rule from the normalizer; other pre-processing is refused, not ignored. */
function readSpacePrefix(root: Json, file: string): SpacePrefix {
  const unsupported = (field: string, found: unknown): never => {
    throw new CliniloraError('E_UNSUPPORTED', 'unsupported text pre-processing', {
      file, field, expected: 'Llama legacy: normalizer Prepend("▁") + Replace(" ", "▁"), no pre_tokenizer',
      found: JSON.stringify(found),
    });
  };
  if (root['pre_tokenizer'] !== null && root['pre_tokenizer'] !== undefined) unsupported('pre_tokenizer', root['pre_tokenizer']);
  const norm = root['normalizer'];
  const steps: unknown[] = norm === null || norm === undefined ? [] : isObject(norm) && norm['type'] === 'Sequence' ? (norm['normalizers'] as unknown[]) : [norm];
  if (!Array.isArray(steps)) return unsupported('normalizer', norm);
  let prepend = false;
  let replace = false;
  for (const s of steps) {
    if (isObject(s) && s['type'] === 'Prepend' && s['prepend'] === '▁' && !replace) prepend = true;
    else if (isObject(s) && s['type'] === 'Replace' && isObject(s['pattern']) && s['pattern']['String'] === ' ' && s['content'] === '▁') replace = true;
    else unsupported('normalizer', s);
  }
  if (!replace) unsupported('normalizer', norm);
  return prepend ? 'always' : 'never';
}

interface ConfigInfo {
  bos?: string;
  eos?: string;
  unk?: string;
  pad?: string;
  addBos?: boolean;
  addEos?: boolean;
  chatTemplate?: string;
}

function readConfig(file: string): ConfigInfo {
  const root = readJson(file);
  if (!isObject(root)) throw new CliniloraError('E_FORMAT', 'tokenizer_config.json must hold an object', { file, field: '(root)' });
  const out: ConfigInfo = {};
  const tokenField = (key: string): string | undefined => {
    const v = root[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v === 'string') return v;
    if (isObject(v) && typeof v['content'] === 'string') return v['content'] as string;
    throw new CliniloraError('E_FORMAT', 'token must be a string or {content}', { file, field: key, found: JSON.stringify(v) });
  };
  const boolField = (key: string): boolean | undefined => {
    const v = root[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'boolean') throw new CliniloraError('E_FORMAT', 'must be true or false', { file, field: key, found: JSON.stringify(v) });
    return v;
  };
  const set = <K extends keyof ConfigInfo>(k: K, v: ConfigInfo[K] | undefined): void => {
    if (v !== undefined) out[k] = v;
  };
  set('bos', tokenField('bos_token'));
  set('eos', tokenField('eos_token'));
  set('unk', tokenField('unk_token'));
  set('pad', tokenField('pad_token'));
  set('addBos', boolField('add_bos_token'));
  set('addEos', boolField('add_eos_token'));
  const tpl = root['chat_template'];
  if (typeof tpl === 'string') {
    out.chatTemplate = tpl;
  } else if (Array.isArray(tpl)) {
    const def = tpl.find((t: unknown) => isObject(t) && t['name'] === 'default');
    if (isObject(def) && typeof def['template'] === 'string') out.chatTemplate = def['template'];
  } else if (tpl !== undefined && tpl !== null) {
    throw new CliniloraError('E_FORMAT', 'chat_template must be a string or a list of {name, template}', { file, field: 'chat_template' });
  }
  return out;
}
