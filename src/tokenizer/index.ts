/** Public API of the tokenizer module. */
import { fileURLToPath } from 'node:url';

export { Phi3Tokenizer, type EncodeOptions, type DecodeOptions, type ChatEncodeOptions, type ChatSpan } from './tokenizer.ts';
export {
  applyChatTemplate,
  formatChatMessage,
  PHI3_TOKEN_IDS,
  PHI3_SPECIAL_TEXTS,
  PHI3_BOS_ID,
  PHI3_EOS_ID,
  PHI3_PAD_ID,
  PHI3_STOP_TOKEN_IDS,
  PHI3_CHAT_TEMPLATE_JINJA,
  PHI3_GENERATION_PROMPT,
  type ChatMessage,
  type ChatRole,
  type ChatTemplateOptions,
} from './chat.ts';
export { toTokenizerJson, toTokenizerConfig, writeTokenizerFiles, deriveMerges } from './hf-export.ts';
export type { HfTokenizerJson, HfAddedToken } from './hf-json.ts';
export { Vocab, TokenType, type SpacePrefix } from './vocab.ts';

/** The shipped Phi-3 vocabulary, `data/ggml-vocab-phi-3.gguf`, found from this module's location. */
export function defaultTokenizerPath(): string {
  return fileURLToPath(new URL('../../data/ggml-vocab-phi-3.gguf', import.meta.url));
}
