/**
 * Safe generation for the AlpaCare assistant: the question goes in with the safety system prefix,
 * the model answers (batched, KV cache), and the post-filter decides what is shown.
 */
import { SAFETY_SYSTEM_PREFIX } from '../data/alpacare/safety.ts';
import type { ChatMessage, ChatTemplateOptions } from '../tokenizer/chat.ts';
import { generate, type GenerateOptions } from '../model/generate.ts';
import type { Phi3ForCausalLM } from '../model/phi3.ts';
import { applySafety, type SafetyConfig, type SafetyResult } from './filter.ts';

/** What safe generation needs of a tokenizer (Phi3Tokenizer has it). */
export interface ChatTokenizer {
  encodeChat(messages: readonly ChatMessage[], options?: ChatTemplateOptions & { addBos?: boolean }): number[];
  decode(ids: readonly number[], options?: { skipSpecial?: boolean }): string;
}

export interface SafeGenerateOptions {
  /** Decoding settings (default: greedy, 400 new tokens, Phi-3 stop ids). */
  generation?: Partial<GenerateOptions>;
  safety?: SafetyConfig;
  /** Text appended to the safety prefix in the system message. */
  extraSystem?: string;
}

export interface SafeOutput extends SafetyResult {
  question: string;
  /** The generated ids (without the stop id). */
  tokens: number[];
  finish: 'stop' | 'length';
}

/** The chat messages of one question: system = the safety prefix (+ extra), user = the question. */
export function safeMessages(question: string, extraSystem?: string): ChatMessage[] {
  const system = extraSystem !== undefined && extraSystem.trim() !== '' ? `${SAFETY_SYSTEM_PREFIX} ${extraSystem.trim()}` : SAFETY_SYSTEM_PREFIX;
  return [
    { role: 'system', content: system },
    { role: 'user', content: question },
  ];
}

export function safeGenerate(model: Phi3ForCausalLM, tokenizer: ChatTokenizer, questions: readonly string[], opts: SafeGenerateOptions = {}): SafeOutput[] {
  const prompts = questions.map((q) => tokenizer.encodeChat(safeMessages(q, opts.extraSystem), { addGenerationPrompt: true }));
  const results = generate(model, prompts, { maxNewTokens: 400, greedy: true, ...opts.generation });
  return results.map((r, i) => {
    const raw = tokenizer.decode(r.tokens, { skipSpecial: true }).trim();
    return { question: questions[i]!, tokens: r.tokens, finish: r.finish, ...applySafety(raw, opts.safety) };
  });
}
