/**
 * The adversarial safety set (written for this project, data/safety/adversarial.jsonl): prompts that
 * ask for a diagnosis, a prescription, a dose, an off-label use, stopping a medicine or combining
 * medicines, through varied tactics (direct, role-play, "my doctor said it's fine", urgency,
 * paediatric doses…). The expected behaviour is always to refuse and refer. EVALUATION ONLY: the
 * builder checks that none of these prompts is in any split.
 */
import { fileURLToPath } from 'node:url';
import { CliniloraError } from '../../errors.ts';
import { SPLIT_NAMES } from '../sample.ts';
import type { Splits } from '../split.ts';
import { readJsonRecords } from '../instruct.ts';

export const ADVERSARIAL_PATH = fileURLToPath(new URL('../../../data/safety/adversarial.jsonl', import.meta.url));

export const ADVERSARIAL_CATEGORIES = ['diagnosis', 'prescription', 'dosage', 'off_label', 'stopping_medication', 'combination'] as const;
export type AdversarialCategory = (typeof ADVERSARIAL_CATEGORIES)[number];
export const ADVERSARIAL_TACTICS = [
  'direct',
  'role_play',
  'authority_claim',
  'urgency',
  'pediatric',
  'hypothetical',
  'professional_claim',
  'emotional',
  'mixing',
] as const;
export type AdversarialTactic = (typeof ADVERSARIAL_TACTICS)[number];

export interface AdversarialPrompt {
  id: string;
  category: AdversarialCategory;
  tactic: AdversarialTactic;
  prompt: string;
  expected_behaviour: 'refuse and refer';
  /** Where to refer: a clinician, or emergency services (possible emergency or self-harm). */
  refer_to: 'clinician' | 'emergency';
}

/** Loads and validates the set; every error names the file, line and field. */
export function loadAdversarialSet(file: string = ADVERSARIAL_PATH): AdversarialPrompt[] {
  const ids = new Set<string>();
  return readJsonRecords(file).map(({ line, value }) => {
    const r = (value ?? {}) as Record<string, unknown>;
    const need = (field: string, ok: (v: unknown) => boolean, expected: string): void => {
      if (!ok(r[field])) throw new CliniloraError('E_FORMAT', 'invalid adversarial prompt', { file, line, field, expected, found: JSON.stringify(r[field]) });
    };
    const isText = (v: unknown): boolean => typeof v === 'string' && v.trim() !== '';
    need('id', (v) => isText(v) && !ids.has(v as string), 'a unique non-empty id');
    need('category', (v) => (ADVERSARIAL_CATEGORIES as readonly unknown[]).includes(v), ADVERSARIAL_CATEGORIES.join('|'));
    need('tactic', (v) => (ADVERSARIAL_TACTICS as readonly unknown[]).includes(v), ADVERSARIAL_TACTICS.join('|'));
    need('prompt', isText, 'non-empty text');
    need('expected_behaviour', (v) => v === 'refuse and refer', "'refuse and refer'");
    need('refer_to', (v) => v === 'clinician' || v === 'emergency', 'clinician|emergency');
    ids.add(r.id as string);
    return r as unknown as AdversarialPrompt;
  });
}

const norm = (t: string): string => t.replace(/\s+/g, ' ').trim().toLowerCase();

/** Throws when any adversarial prompt appears (whitespace/case-insensitively) in any split's prompt. */
export function assertNoAdversarialInSplits(splits: Splits, set: readonly AdversarialPrompt[], what: string): void {
  const prompts = set.map((a) => ({ id: a.id, text: norm(a.prompt) }));
  for (const name of SPLIT_NAMES) {
    for (const s of splits[name]) {
      const user = norm(`${s.system} ${s.user}`);
      const hit = prompts.find((p) => user.includes(p.text));
      if (hit) {
        throw new CliniloraError('E_FORMAT', `adversarial evaluation prompt ${hit.id} is in the ${name} split of ${what} (sample ${s.id})`, {
          field: name,
          hint: 'the adversarial safety set is for evaluation only; remove it from the training data',
        });
      }
    }
  }
}

/**
 * The first `n` prompts taken round-robin across categories (in file order within each), so a small
 * evaluation slice covers every kind of request instead of only the file's first category.
 */
export function adversarialSlice(set: readonly AdversarialPrompt[], n: number | null): AdversarialPrompt[] {
  if (n === null || n >= set.length) return [...set];
  const queues = ADVERSARIAL_CATEGORIES.map((c) => set.filter((a) => a.category === c));
  const out: AdversarialPrompt[] = [];
  for (let i = 0; out.length < n; i++) for (const q of queues) if (i < q.length && out.length < n) out.push(q[i]!);
  return out;
}
