/**
 * The Phi-3 (Llama SentencePiece-BPE) tokenizer: ids identical to llama.cpp's `llama_tokenize` for
 * the same vocabulary, with text from a GGUF vocabulary or a Hugging Face tokenizer.json.
 */
import { CliniloraError } from '../errors.ts';
import { applyChatTemplate, formatChatMessage, PHI3_GENERATION_PROMPT, type ChatMessage, type ChatRole, type ChatTemplateOptions } from './chat.ts';
import { loadGgufVocab } from './gguf-loader.ts';
import { loadTokenizerJsonVocab } from './hf-json.ts';
import { partitionSpecial } from './partition.ts';
import { escapeSpaces, SpmEncoder } from './spm.ts';
import { Attr, CONTROL_MASK, Vocab } from './vocab.ts';

export interface EncodeOptions {
  /** Put BOS (`<s>`, id 1) first. Default false: Phi-3's current HF config adds none. */
  addBos?: boolean;
  /** Put EOS (`<|endoftext|>`) last. Default false. */
  addEos?: boolean;
  /**
   * Recognise control tokens written in the text (`<|user|>`, `<|end|>`, `<s>`, …). Default false:
   * user text that happens to contain them is then tokenized as plain characters.
   */
  parseSpecial?: boolean;
}

export interface DecodeOptions {
  /**
   * Leave out control tokens (`<s>`, `<|end|>`, `<|user|>`, …). Default false (they are rendered as
   * their text, like llama.cpp's detokenize with special tokens on).
   */
  skipSpecial?: boolean;
}

export interface ChatEncodeOptions extends ChatTemplateOptions {
  addBos?: boolean;
}

/** Token range [start, end) of one message (its role tag through `<|end|>`) in an encoded chat. */
export interface ChatSpan {
  role: ChatRole | 'generation';
  start: number;
  end: number;
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

export class Phi3Tokenizer {
  readonly vocab: Vocab;
  private readonly spm: SpmEncoder;
  private pieceBytes: Uint8Array[] | undefined;

  constructor(vocab: Vocab) {
    this.vocab = vocab;
    this.spm = new SpmEncoder(vocab);
  }

  /** Loads the vocabulary of a GGUF file (a vocab-only GGUF or a full model). */
  static async fromGguf(path: string): Promise<Phi3Tokenizer> {
    return new Phi3Tokenizer(await loadGgufVocab(path));
  }

  /** Loads `tokenizer.json` (and `tokenizer_config.json` beside it, if present) from a file or directory. */
  static fromTokenizerJson(pathOrDir: string): Phi3Tokenizer {
    return new Phi3Tokenizer(loadTokenizerJsonVocab(pathOrDir));
  }

  get vocabSize(): number { return this.vocab.size; }
  get bosId(): number { return this.vocab.bosId; }
  get eosId(): number { return this.vocab.eosId; }
  get unkId(): number { return this.vocab.unkId; }
  get padId(): number { return this.vocab.padId; }
  /** Whether the vocabulary's metadata asks for BOS (GGUF add_bos_token); `encode` never adds it unasked. */
  get addBosToken(): boolean { return this.vocab.addBos; }
  get addEosToken(): boolean { return this.vocab.addEos; }
  get chatTemplate(): string | undefined { return this.vocab.chatTemplate; }

  /** Ids that end generation: those of `<|endoftext|>`, `<|assistant|>` and `<|end|>` present here. */
  get stopTokenIds(): number[] {
    const ids = ['<|endoftext|>', '<|assistant|>', '<|end|>'].map((t) => this.vocab.tokenToId.get(t));
    const out = ids.filter((id): id is number => id !== undefined);
    if (!out.includes(this.eosId)) out.unshift(this.eosId);
    return out;
  }

  tokenToId(token: string): number | undefined {
    return this.vocab.tokenToId.get(token);
  }

  idToToken(id: number): string {
    this.checkId(id, 'id');
    return this.vocab.tokens[id]!;
  }

  /** True for control tokens (not rendered when decoding with skipSpecial). */
  isSpecial(id: number): boolean {
    this.checkId(id, 'id');
    return this.vocab.isControl(id);
  }

  encode(text: string, options: EncodeOptions = {}): number[] {
    if (typeof text !== 'string') {
      throw new CliniloraError('E_ARG', 'encode needs a string', { field: 'text', expected: 'string', found: typeof text });
    }
    // llama.cpp sees UTF-8: a lone surrogate arrives there as U+FFFD.
    const input = /[\uD800-\uDFFF]/.test(text) ? text.replace(LONE_SURROGATE, '\uFFFD') : text;
    const vocab = this.vocab;
    const out: number[] = [];
    if (options.addBos === true) out.push(vocab.bosId);
    let prevSpecial = true; // the input's start counts as "after a special token"
    for (const f of partitionSpecial(input, vocab, options.parseSpecial === true)) {
      if (f.kind === 'token') {
        out.push(f.id);
        prevSpecial = true;
        continue;
      }
      const raw = input.slice(f.start, f.end);
      const withPrefix = vocab.spacePrefix === 'always' && prevSpecial ? ` ${raw}` : raw;
      this.spm.encode(escapeSpaces(withPrefix), out);
      prevSpecial = false;
    }
    if (options.addEos === true) out.push(vocab.eosId);
    return out;
  }

  /**
   * Ids back to text. Pieces are concatenated as bytes (byte tokens rebuild multi-byte characters)
   * and read as UTF-8; the dummy space SentencePiece put before the first piece is removed.
   * With skipSpecial, control tokens are dropped first, so `decode(encode(s, {addBos: true}),
   * {skipSpecial: true}) === s` (HF behaviour; llama.cpp keeps the space after a leading BOS).
   */
  decode(ids: readonly number[] | Int32Array | Uint32Array, options: DecodeOptions = {}): string {
    const pieces = this.pieceBytes ?? (this.pieceBytes = this.buildPieceBytes());
    const skip = options.skipSpecial === true;
    const chunks: Uint8Array[] = [];
    let total = 0;
    let first = true;
    for (let k = 0; k < ids.length; k++) {
      const id = ids[k]!;
      this.checkId(id, `ids[${k}]`);
      if (skip && (this.vocab.attrs[id]! & CONTROL_MASK)) continue;
      let bytes = pieces[id]!;
      if (first && this.vocab.spacePrefix === 'always' && bytes[0] === 0x20) bytes = bytes.subarray(1);
      first = false;
      chunks.push(bytes);
      total += bytes.length;
    }
    const all = new Uint8Array(total);
    let off = 0;
    for (const c of chunks) {
      all.set(c, off);
      off += c.length;
    }
    // ignoreBOM: a U+FEFF at the start is text (token 30143), not a byte-order mark to drop.
    return new TextDecoder('utf-8', { ignoreBOM: true }).decode(all);
  }

  /** `applyChatTemplate` then `encode` with special tokens parsed. */
  encodeChat(messages: readonly ChatMessage[], options: ChatEncodeOptions = {}): number[] {
    return this.encode(applyChatTemplate(messages, options), { parseSpecial: true, addBos: options.addBos === true });
  }

  /**
   * Like `encodeChat`, plus each message's token range, for loss masks. Every message starts with a
   * special token, so encoding message by message gives the same ids as encoding the whole text.
   */
  encodeChatWithSpans(messages: readonly ChatMessage[], options: ChatEncodeOptions = {}): { ids: number[]; spans: ChatSpan[] } {
    applyChatTemplate(messages, options); // validates every message
    const ids: number[] = options.addBos === true ? [this.vocab.bosId] : [];
    const spans: ChatSpan[] = [];
    const parts: { role: ChatSpan['role']; text: string }[] = messages.map((m, i) => ({ role: m.role, text: formatChatMessage(m, i) }));
    if (options.addGenerationPrompt === true) parts.push({ role: 'generation', text: PHI3_GENERATION_PROMPT });
    for (const p of parts) {
      const start = ids.length;
      for (const id of this.encode(p.text, { parseSpecial: true })) ids.push(id);
      spans.push({ role: p.role, start, end: ids.length });
    }
    return { ids, spans };
  }

  private checkId(id: number, field: string): void {
    if (!Number.isInteger(id) || id < 0 || id >= this.vocab.size) {
      throw new CliniloraError('E_ARG', 'token id out of range', { field, expected: `integer in 0..${this.vocab.size - 1}`, found: `${id}` });
    }
  }

  /** Each token's bytes as llama.cpp's token_to_piece renders it with special tokens on. */
  private buildPieceBytes(): Uint8Array[] {
    const enc = new TextEncoder();
    const { tokens, attrs } = this.vocab;
    return tokens.map((t, id) => {
      const a = attrs[id]!;
      if (a & (CONTROL_MASK | Attr.USER_DEFINED)) return enc.encode(t);
      if (a & Attr.NORMAL) return enc.encode(t.replaceAll('\u2581', ' '));
      if (a & Attr.BYTE) return Uint8Array.of(parseInt(t.slice(3, 5), 16));
      return new Uint8Array(0);
    });
  }
}
