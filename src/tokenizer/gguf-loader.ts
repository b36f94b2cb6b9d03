/**
 * Reads a SentencePiece vocabulary from GGUF metadata (`tokenizer.ggml.*`) with @huggingface/gguf.
 * Only the header is parsed; a full model file works too.
 */
import { closeSync, existsSync, fstatSync, openSync, readSync } from 'node:fs';
import { resolve } from 'node:path';
import { gguf } from '@huggingface/gguf';
import { CliniloraError } from '../errors.ts';
import { phi3StripAttrs, Vocab } from './vocab.ts';

type Metadata = Record<string, unknown>;

export async function loadGgufVocab(path: string): Promise<Vocab> {
  const file = resolve(path);
  if (!existsSync(file)) {
    throw new CliniloraError('E_IO', 'vocabulary file not found', { file: path, hint: 'pass the path of a .gguf file' });
  }
  let metadata: Metadata;
  try {
    metadata = (await gguf(file, { allowLocalFile: true })).metadata as unknown as Metadata;
  } catch (err) {
    throw new CliniloraError('E_FORMAT', `not a readable GGUF file: ${(err as Error).message}`, { file: path }, { cause: err });
  }
  const where = (field: string) => ({ file: path, field });

  const model = metadata['tokenizer.ggml.model'];
  if (model !== 'llama') {
    throw new CliniloraError('E_UNSUPPORTED', 'only SentencePiece ("llama") vocabularies are supported', {
      ...where('tokenizer.ggml.model'), expected: '"llama"', found: JSON.stringify(model ?? null),
    });
  }
  const tokens = metadata['tokenizer.ggml.tokens'];
  if (!Array.isArray(tokens) || !tokens.every((t) => typeof t === 'string')) {
    throw new CliniloraError('E_FORMAT', 'token list missing or not strings', { ...where('tokenizer.ggml.tokens'), expected: 'string[]' });
  }
  const n = tokens.length;
  const pieces = readTokenStrings(file, n) ?? (tokens as string[]);
  const scores = numberArray(metadata, 'tokenizer.ggml.scores', path) ?? new Array<number>(n).fill(0);
  // Without types llama.cpp takes every token as NORMAL.
  const types = numberArray(metadata, 'tokenizer.ggml.token_type', path) ?? new Array<number>(n).fill(1);

  const id = (key: string, fallback: number): number => {
    const v = metadata[key];
    if (v === undefined) return fallback;
    if (typeof v !== 'number') throw new CliniloraError('E_FORMAT', 'token id is not a number', { ...where(key), found: typeof v });
    return v;
  };
  const flag = (key: string, fallback: boolean): boolean => {
    const v = metadata[key];
    if (v === undefined) return fallback;
    if (typeof v !== 'boolean') throw new CliniloraError('E_FORMAT', 'flag is not a boolean', { ...where(key), found: typeof v });
    return v;
  };

  // llama.cpp's defaults for SPM vocabularies: BOS 1, EOS 2, UNK 0, no pad; add_bos on, prefix on.
  const eosId = id('tokenizer.ggml.eos_token_id', 2);
  const name = metadata['general.name'];
  const isPhi3 = typeof name === 'string' && /phi-?3/.test(name.toLowerCase());
  const template = metadata['tokenizer.chat_template'];
  return new Vocab({
    tokens: pieces,
    scores,
    types,
    bosId: id('tokenizer.ggml.bos_token_id', 1),
    eosId,
    unkId: id('tokenizer.ggml.unknown_token_id', 0),
    padId: id('tokenizer.ggml.padding_token_id', eosId),
    addBos: flag('tokenizer.ggml.add_bos_token', true),
    addEos: flag('tokenizer.ggml.add_eos_token', false),
    spacePrefix: flag('tokenizer.ggml.add_space_prefix', true) ? 'always' : 'never',
    ...(typeof template === 'string' ? { chatTemplate: template } : {}),
    // llama.cpp sets Phi-3's strip flags by model name, as GGUF has no field for them.
    ...(isPhi3 ? { extraAttrs: phi3StripAttrs(pieces, types) } : {}),
    source: path,
  });
}

function numberArray(metadata: Metadata, key: string, file: string): number[] | undefined {
  const v = metadata[key];
  if (v === undefined) return undefined;
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'number')) {
    throw new CliniloraError('E_FORMAT', 'expected an array of numbers', { file, field: key, found: Array.isArray(v) ? 'mixed array' : typeof v });
  }
  return v as number[];
}

const HEADER_READ_MAX = 64 << 20;

/**
 * The token strings again, straight from the file: @huggingface/gguf decodes strings with a default
 * TextDecoder, which drops a leading U+FEFF, so Llama's token 30143 ("\uFEFF") comes back empty.
 * Finds the `tokenizer.ggml.tokens` array (GGUF v2/v3 layout: u64 lengths) in the header and decodes
 * it keeping the BOM. Returns undefined when it cannot be found or does not hold `count` strings.
 */
function readTokenStrings(file: string, count: number): string[] | undefined {
  const fd = openSync(file, 'r');
  let buf: Buffer;
  try {
    const size = Math.min(fstatSync(fd).size, HEADER_READ_MAX);
    buf = Buffer.alloc(size);
    let off = 0;
    while (off < size) {
      const got = readSync(fd, buf, off, size - off, off);
      if (got === 0) break;
      off += got;
    }
  } finally {
    closeSync(fd);
  }
  const key = Buffer.from('tokenizer.ggml.tokens', 'utf8');
  const decoder = new TextDecoder('utf-8', { ignoreBOM: true });
  for (let at = buf.indexOf(key); at >= 8; at = buf.indexOf(key, at + 1)) {
    let p = at + key.length;
    if (p + 16 > buf.length) return undefined;
    // [u64 key length][key][u32 type = 9 array][u32 element type = 8 string][u64 count]
    if (Number(buf.readBigUInt64LE(at - 8)) !== key.length || buf.readUInt32LE(p) !== 9 || buf.readUInt32LE(p + 4) !== 8) continue;
    if (Number(buf.readBigUInt64LE(p + 8)) !== count) return undefined;
    p += 16;
    const out: string[] = new Array<string>(count);
    for (let i = 0; i < count; i++) {
      if (p + 8 > buf.length) return undefined;
      const len = Number(buf.readBigUInt64LE(p));
      p += 8;
      if (p + len > buf.length) return undefined;
      out[i] = decoder.decode(buf.subarray(p, p + len));
      p += len;
    }
    return out;
  }
  return undefined;
}
