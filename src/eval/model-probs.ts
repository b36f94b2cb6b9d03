/**
 * Numbers read from the model's next-token distribution instead of its sampled text.
 *
 * Heart-risk probability. The answer format is `Risk: <level> (probability 0.<d><d>)`. With the
 * prompt ending at the generation prompt, two forwards read:
 *   1. P(level) — the distribution after "Risk:" over the first token of " low", " moderate",
 *      " high", renormalised over the three;
 *   2. P(d | level) — for each level, after "Risk: <level> (probability 0." the distribution over the
 *      ten digit tokens, renormalised (the Phi-3 tokenizer splits numbers into single digits).
 * probability = Σ_level P(level) · Σ_d P(d | level) · (d + 0.5) / 10 — the expected value of the
 * first decimal, each digit standing for the middle of its tenth (so the result lies in [0.05, 0.95]).
 * `mass` reports how much of the raw distribution fell on the allowed tokens (near 1 for a model that
 * learned the format). Continuation ids come from the tokenizer, so any vocabulary works whose digits
 * are single tokens; otherwise the error says so.
 */
import { tf } from '../backend/tf.ts';
import { CliniloraError } from '../errors.ts';
import { PHI3_GENERATION_PROMPT } from '../tokenizer/chat.ts';
import type { Phi3ForCausalLM } from '../model/phi3.ts';
import { softmax } from '../model/sampling.ts';
import type { RiskLevel } from '../data/heart/answer.ts';

/** What the risk reader needs of a tokenizer (Phi3Tokenizer has it). */
export interface EncodingTokenizer {
  encode(text: string, options?: { parseSpecial?: boolean }): number[];
}

export const RISK_LEVELS: readonly RiskLevel[] = ['low', 'moderate', 'high'];

export interface RiskReading {
  /** Expected risk probability in [0, 1]. */
  probability: number;
  /** P(level), renormalised over the three levels. */
  levels: Record<RiskLevel, number>;
  /** P(first decimal = d | level), d = 0..9, renormalised. */
  digits: Record<RiskLevel, number[]>;
  /** Raw probability mass on the three level tokens, and per level on the ten digits. */
  mass: { levels: number; digits: Record<RiskLevel, number> };
}

interface RiskTokens {
  /** Ids after the generation prompt up to where the level token is read ("Risk:"). */
  common: number[];
  levelFirst: number[];
  /** Per level: the ids of "Risk: <level> (probability 0." after the generation prompt. */
  digitContext: number[][];
  /** Per level: the ten digit ids that follow. */
  digitIds: number[][];
}

const cacheByTokenizer = new WeakMap<EncodingTokenizer, RiskTokens>();

function riskTokens(tok: EncodingTokenizer): RiskTokens {
  const hit = cacheByTokenizer.get(tok);
  if (hit) return hit;
  const gen = tok.encode(PHI3_GENERATION_PROMPT, { parseSpecial: true });
  const after = (text: string): number[] => {
    const ids = tok.encode(PHI3_GENERATION_PROMPT + text, { parseSpecial: true });
    if (!gen.every((id, i) => ids[i] === id)) {
      throw new CliniloraError('E_TOKENIZER', 'the answer prefix does not tokenize as a continuation of the generation prompt', { field: 'tokenizer', found: text });
    }
    return ids.slice(gen.length);
  };
  const levelIds = RISK_LEVELS.map((l) => after(`Risk: ${l}`));
  let c = 0;
  while (levelIds.every((ids) => ids[c] !== undefined && ids[c] === levelIds[0]![c])) c++;
  const levelFirst = levelIds.map((ids) => ids[c]!);
  if (levelFirst.some((id) => id === undefined) || new Set(levelFirst).size !== RISK_LEVELS.length) {
    throw new CliniloraError('E_TOKENIZER', 'the three risk levels do not start with distinct tokens', { field: 'tokenizer', found: JSON.stringify(levelIds) });
  }
  const digitContext = RISK_LEVELS.map((l) => after(`Risk: ${l} (probability 0.`));
  const digitIds = RISK_LEVELS.map((l, li) =>
    Array.from({ length: 10 }, (_, d) => {
      const ids = after(`Risk: ${l} (probability 0.${d}`);
      const ctx = digitContext[li]!;
      if (ids.length !== ctx.length + 1 || !ctx.every((id, i) => ids[i] === id)) {
        throw new CliniloraError('E_TOKENIZER', 'digits are not single tokens after "probability 0." in this vocabulary', { field: 'tokenizer', found: `digit ${d}` });
      }
      return ids[ids.length - 1]!;
    }),
  );
  const out = { common: levelIds[0]!.slice(0, c), levelFirst, digitContext, digitIds };
  cacheByTokenizer.set(tok, out);
  return out;
}

/** Next-token probabilities [rows][V] after each sequence (left-padded batch, one forward). */
function nextTokenProbs(model: Phi3ForCausalLM, seqs: number[][]): Float64Array[] {
  const V = model.config.vocabSize;
  const L = Math.max(...seqs.map((s) => s.length));
  const p = model.config.padTokenId;
  const pad = p !== null && p < V ? p : 0;
  const ids = seqs.map((s) => [...new Array<number>(L - s.length).fill(pad), ...s]);
  const mask = seqs.map((s) => [...new Array<number>(L - s.length).fill(0), ...s.map(() => 1)]);
  const logits = tf.tidy(() => model.forward(ids, { attentionMask: mask, lastOnly: true })); // [B, 1, V]
  const data = logits.dataSync() as Float32Array;
  logits.dispose();
  return seqs.map((_, b) => softmax(data.subarray(b * V, (b + 1) * V)));
}

function pick(probs: Float64Array, ids: readonly number[]): { dist: number[]; mass: number } {
  const raw = ids.map((id) => probs[id] ?? 0);
  const mass = raw.reduce((a, b) => a + b, 0);
  return { dist: raw.map((x) => (mass > 0 ? x / mass : 1 / ids.length)), mass };
}

/**
 * The risk probability of one prompt (chat ids ending with the generation prompt `<|assistant|>`),
 * read from the model's token probabilities as described at the top of this file.
 */
export function riskProbabilityFromModel(model: Phi3ForCausalLM, promptIds: readonly number[], tokenizer: EncodingTokenizer): RiskReading {
  const gen = tokenizer.encode(PHI3_GENERATION_PROMPT, { parseSpecial: true });
  if (promptIds.length < gen.length || !gen.every((id, i) => promptIds[promptIds.length - gen.length + i] === id)) {
    throw new CliniloraError('E_ARG', 'the prompt must end with the generation prompt (<|assistant|>)', { field: 'promptIds', expected: `… ${gen.join(', ')}`, found: `… ${promptIds.slice(-4).join(', ')}` });
  }
  const t = riskTokens(tokenizer);
  const V = model.config.vocabSize;
  const all = [...t.common, ...t.levelFirst, ...t.digitIds.flat(), ...t.digitContext.flat()];
  if (all.some((id) => id >= V)) {
    throw new CliniloraError('E_ARG', "the tokenizer's ids exceed the model's vocabulary", { field: 'tokenizer', expected: `< ${V}`, found: String(Math.max(...all)) });
  }
  const [levelProbs] = nextTokenProbs(model, [[...promptIds, ...t.common]]);
  const lv = pick(levelProbs!, t.levelFirst);
  const digitProbs = nextTokenProbs(model, t.digitContext.map((ctx) => [...promptIds, ...ctx]));
  const levels = {} as Record<RiskLevel, number>;
  const digits = {} as Record<RiskLevel, number[]>;
  const digitMass = {} as Record<RiskLevel, number>;
  let probability = 0;
  RISK_LEVELS.forEach((l, i) => {
    const d = pick(digitProbs[i]!, t.digitIds[i]!);
    levels[l] = lv.dist[i]!;
    digits[l] = d.dist;
    digitMass[l] = d.mass;
    probability += lv.dist[i]! * d.dist.reduce((a, p, k) => a + (p * (k + 0.5)) / 10, 0);
  });
  return { probability, levels, digits, mass: { levels: lv.mass, digits: digitMass } };
}

/**
 * Per-token negative log-likelihoods (nats) of `answerIds` after `promptIds`, teacher-forced in one
 * forward. [A] for A answer tokens.
 */
export function answerNlls(model: Phi3ForCausalLM, promptIds: readonly number[], answerIds: readonly number[]): Float64Array {
  if (promptIds.length === 0 || answerIds.length === 0) {
    throw new CliniloraError('E_ARG', 'answer NLLs need a prompt and an answer of at least one token', { field: promptIds.length === 0 ? 'promptIds' : 'answerIds' });
  }
  const P = promptIds.length;
  const A = answerIds.length;
  const V = model.config.vocabSize;
  const logp = tf.tidy(() => {
    const logits = model.forward([[...promptIds, ...answerIds]]); // [1, P + A, V]
    // The token at P + j is predicted from position P + j − 1.
    return tf.logSoftmax(tf.reshape(tf.slice(logits, [0, P - 1, 0], [1, A, V]), [A, V])); // [A, V]
  });
  const data = logp.dataSync() as Float32Array;
  logp.dispose();
  return Float64Array.from(answerIds, (id, j) => -data[j * V + id]!);
}
