/**
 * Token counts with the real Phi-3 tokenizer (the shipped GGUF vocabulary), for length limits and
 * length distributions. The tokenizer is loaded once per process; every caller shares it.
 */
import { Phi3Tokenizer, defaultTokenizerPath, type ChatMessage } from '../tokenizer/index.ts';
import type { Sample } from './sample.ts';

/** Counts the tokens of a plain text (no BOS, no special-token parsing). */
export type TokenCounter = (text: string) => number;

let loading: Promise<Phi3Tokenizer> | undefined;

/** The shipped Phi-3 tokenizer, loaded on first use and cached for the process. */
export function phi3Tokenizer(): Promise<Phi3Tokenizer> {
  if (!loading) {
    loading = Phi3Tokenizer.fromGguf(defaultTokenizerPath());
    // A failed load is not cached: the next call tries again.
    loading.catch(() => {
      loading = undefined;
    });
  }
  return loading;
}

/**
 * A synchronous counter over the real Phi-3 tokenizer, as the dataset builders take it. Its function
 * name (`phi3TokenCount`) is what a manifest records as the token counter.
 */
export async function phi3TokenCounter(): Promise<TokenCounter> {
  const tok = await phi3Tokenizer();
  return function phi3TokenCount(text: string): number {
    return tok.encode(text).length;
  };
}

/** The chat turns of a sample: system (when not empty), user, and the answer as the assistant turn. */
export function sampleMessages(sample: Pick<Sample, 'system' | 'user' | 'answer'>): ChatMessage[] {
  const messages: ChatMessage[] = [];
  if (sample.system !== '') messages.push({ role: 'system', content: sample.system });
  messages.push({ role: 'user', content: sample.user }, { role: 'assistant', content: sample.answer });
  return messages;
}

export interface ChatTokenCounts {
  /** Everything the model reads before it answers: system and user turns and the `<|assistant|>` tag. */
  prompt: number;
  /** What the model must write: the answer and its closing `<|end|>\n` (the loss targets). */
  answer: number;
  /** prompt + answer: the sequence length in training. */
  total: number;
}

/**
 * Tokens of a sample in Phi-3's chat format,
 * `<|system|>\n{system}<|end|>\n<|user|>\n{user}<|end|>\n<|assistant|>\n{answer}<|end|>\n`,
 * split where the answer starts (just after the `<|assistant|>` token).
 */
export function chatTokenCounts(sample: Pick<Sample, 'system' | 'user' | 'answer'>, tok: Phi3Tokenizer): ChatTokenCounts {
  const { ids, spans } = tok.encodeChatWithSpans(sampleMessages(sample));
  const assistant = spans[spans.length - 1]!;
  const prompt = assistant.start + 1; // the `<|assistant|>` tag is one special token
  return { prompt, answer: ids.length - prompt, total: ids.length };
}

/** The full chat-formatted length of a sample (prompt + answer), in tokens. */
export function chatTokenLength(sample: Pick<Sample, 'system' | 'user' | 'answer'>, tok: Phi3Tokenizer): number {
  return tok.encodeChat(sampleMessages(sample)).length;
}
