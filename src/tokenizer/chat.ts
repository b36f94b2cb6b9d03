/**
 * Phi-3 special token ids and its chat format (FACTS.md; Phi-3-mini-4k-instruct tokenizer_config.json):
 *   <|system|>\n{c}<|end|>\n<|user|>\n{c}<|end|>\n<|assistant|>\n{answer}<|end|>\n
 */
import { CliniloraError } from '../errors.ts';

/** Ids of Phi-3's special tokens (ggml-vocab-phi-3.gguf, Phi-3-mini tokenizer.json). */
export const PHI3_TOKEN_IDS = {
  unk: 0,
  bos: 1,
  /** `</s>`: SentencePiece's end of sentence; Phi-3 does not use it as EOS. */
  sentenceEnd: 2,
  /** `<|endoftext|>`: Phi-3's EOS and pad token. */
  endOfText: 32000,
  assistant: 32001,
  placeholder1: 32002,
  placeholder2: 32003,
  placeholder3: 32004,
  placeholder4: 32005,
  system: 32006,
  end: 32007,
  placeholder5: 32008,
  placeholder6: 32009,
  user: 32010,
} as const;

/** The texts of those tokens, in the same order as the keys above. */
export const PHI3_SPECIAL_TEXTS: Readonly<Record<keyof typeof PHI3_TOKEN_IDS, string>> = {
  unk: '<unk>',
  bos: '<s>',
  sentenceEnd: '</s>',
  endOfText: '<|endoftext|>',
  assistant: '<|assistant|>',
  placeholder1: '<|placeholder1|>',
  placeholder2: '<|placeholder2|>',
  placeholder3: '<|placeholder3|>',
  placeholder4: '<|placeholder4|>',
  system: '<|system|>',
  end: '<|end|>',
  placeholder5: '<|placeholder5|>',
  placeholder6: '<|placeholder6|>',
  user: '<|user|>',
};

export const PHI3_BOS_ID = PHI3_TOKEN_IDS.bos;
export const PHI3_EOS_ID = PHI3_TOKEN_IDS.endOfText;
export const PHI3_PAD_ID = PHI3_TOKEN_IDS.endOfText;
/** Generation stops on `<|endoftext|>`, `<|assistant|>` and `<|end|>` (generation_config.json). */
export const PHI3_STOP_TOKEN_IDS: readonly number[] = Object.freeze([32000, 32001, 32007]);

export type ChatRole = 'system' | 'user' | 'assistant';

export interface ChatMessage {
  role: ChatRole;
  content: string;
}

export interface ChatTemplateOptions {
  /** Append `<|assistant|>\n` so the model writes the next answer. Default false. */
  addGenerationPrompt?: boolean;
}

const ROLE_TAG: Record<ChatRole, string> = {
  system: '<|system|>',
  user: '<|user|>',
  assistant: '<|assistant|>',
};

/** The text of one message as the template writes it. */
export function formatChatMessage(message: ChatMessage, index = 0): string {
  const tag = ROLE_TAG[message.role as ChatRole];
  if (tag === undefined) {
    throw new CliniloraError('E_ARG', 'unknown chat role', {
      field: `messages[${index}].role`, expected: 'system | user | assistant', found: JSON.stringify(message.role),
    });
  }
  if (typeof message.content !== 'string') {
    throw new CliniloraError('E_ARG', 'chat message content must be a string', {
      field: `messages[${index}].content`, expected: 'string', found: typeof message.content,
    });
  }
  return `${tag}\n${message.content}<|end|>\n`;
}

/** The same template in Jinja, for tokenizer_config.json (what `applyChatTemplate` renders). */
export const PHI3_CHAT_TEMPLATE_JINJA =
  "{% for message in messages %}{% if message['role'] == 'system' %}{{'<|system|>\n' + message['content'] + '<|end|>\n'}}" +
  "{% elif message['role'] == 'user' %}{{'<|user|>\n' + message['content'] + '<|end|>\n'}}" +
  "{% elif message['role'] == 'assistant' %}{{'<|assistant|>\n' + message['content'] + '<|end|>\n'}}" +
  "{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}";

/** The generation prompt the template appends when asked to. */
export const PHI3_GENERATION_PROMPT = '<|assistant|>\n';

/** Renders messages in Phi-3's chat format; adds no BOS and no EOS (as the current HF config). */
export function applyChatTemplate(messages: readonly ChatMessage[], options: ChatTemplateOptions = {}): string {
  if (!Array.isArray(messages)) {
    throw new CliniloraError('E_ARG', 'messages must be an array', { field: 'messages', expected: 'array', found: typeof messages });
  }
  let out = '';
  messages.forEach((m, i) => {
    out += formatChatMessage(m, i);
  });
  if (options.addGenerationPrompt === true) out += PHI3_GENERATION_PROMPT;
  return out;
}
