/**
 * The post-filter: scans an answer with the rules of src/safety/rules.ts, replaces a tripped answer
 * with a standard refuse-and-refer response, and guarantees the disclaimer at the end exactly once.
 * The result always says what tripped (rule id, category, matched span), also when the filter is off.
 */
import { CliniloraError } from '../errors.ts';
import { DISCLAIMER, withDisclaimer } from '../data/alpacare/safety.ts';
import { DEFAULT_SAFETY_RULES, type SafetyCategory, type SafetyRule } from './rules.ts';

/** What replaces an answer that tripped the filter (the disclaimer is appended after it). */
export const SAFE_FALLBACK =
  "I'm sorry, but I can't help with that here: I can't diagnose conditions, choose or prescribe medicines, or give doses or changes to a treatment. " +
  'Please ask a doctor, pharmacist or other qualified clinician, who can look at your situation safely. ' +
  'If this could be an emergency, call your local emergency number now.';

export interface SafetyConfig {
  /** Replace a tripped answer with the fallback (default true). Off: violations are still reported. */
  enabled?: boolean;
  /** The rule table (default DEFAULT_SAFETY_RULES). */
  rules?: readonly SafetyRule[];
  /** Rules added to the table (your own). */
  extraRules?: readonly SafetyRule[];
  /** Rule ids or whole categories to switch off. */
  disable?: readonly string[];
  /** The response used when the filter trips (default SAFE_FALLBACK). */
  fallback?: string;
  /** Append the disclaimer (exactly once, at the end). Default true. */
  disclaimer?: boolean;
}

export interface SafetyViolation {
  ruleId: string;
  category: SafetyCategory;
  /** The matched text and its [start, end) offsets in the raw answer. */
  match: string;
  start: number;
  end: number;
}

export interface SafetyResult {
  /** What to show: the raw answer or the fallback, with the disclaimer. */
  text: string;
  raw: string;
  violations: SafetyViolation[];
  /** At least one rule matched the raw answer. */
  tripped: boolean;
  /** The fallback replaced the answer (tripped and enabled). */
  fallbackUsed: boolean;
  /** The disclaimer was not already at the end of the (kept) answer exactly once. */
  disclaimerAdded: boolean;
}

export interface CompiledRule {
  rule: SafetyRule;
  re: RegExp;
  excuse: RegExp | null;
}

function compile(source: string, flags: string, rule: SafetyRule, field: string): RegExp {
  try {
    return new RegExp(source, flags);
  } catch (e) {
    throw new CliniloraError('E_CONFIG', `safety rule ${rule.id}: invalid regular expression`, { field, found: source, hint: (e as Error).message });
  }
}

const cache = new WeakMap<SafetyConfig, CompiledRule[]>();

/** The active rules of a config, compiled (errors name the rule id and field). */
export function compileRules(config: SafetyConfig = {}): CompiledRule[] {
  const hit = cache.get(config);
  if (hit) return hit;
  const all = [...(config.rules ?? DEFAULT_SAFETY_RULES), ...(config.extraRules ?? [])];
  const off = new Set(config.disable ?? []);
  const ids = new Set<string>();
  const out: CompiledRule[] = [];
  for (const rule of all) {
    if (ids.has(rule.id)) throw new CliniloraError('E_CONFIG', `duplicate safety rule id ${rule.id}`, { field: 'rules.id', found: rule.id });
    ids.add(rule.id);
    if (off.has(rule.id) || off.has(rule.category)) continue;
    const flags = `${(rule.flags ?? 'i').replace(/g/g, '')}g`;
    out.push({
      rule,
      re: compile(rule.pattern, flags, rule, 'pattern'),
      excuse: rule.excuseBefore !== undefined ? compile(rule.excuseBefore, 'i', rule, 'excuseBefore') : null,
    });
  }
  const unknown = [...off].filter((k) => !all.some((r) => r.id === k || r.category === k));
  if (unknown.length > 0) {
    throw new CliniloraError('E_CONFIG', `unknown safety rule or category to disable: ${unknown.join(', ')}`, {
      field: 'disable',
      expected: [...new Set(all.flatMap((r) => [r.category, r.id]))].join('|'),
      found: unknown.join(', '),
    });
  }
  cache.set(config, out);
  return out;
}

/** The sentence's text before offset `at` (at most 80 characters): where an excuse must be. */
function before(text: string, at: number): string {
  let s = at;
  while (s > 0 && at - s < 80 && !/[.!?\n]/.test(text[s - 1]!)) s--;
  return text.slice(s, at);
}

/** Every rule match in `text` (the disclaimer sentence is ignored), in text order. */
export function findViolations(text: string, config: SafetyConfig = {}): SafetyViolation[] {
  // Blank out the disclaimer with spaces of the same length, so offsets stay those of `text`.
  const scan = text.split(DISCLAIMER).join(' '.repeat(DISCLAIMER.length));
  const out: SafetyViolation[] = [];
  for (const { rule, re, excuse } of compileRules(config)) {
    re.lastIndex = 0;
    for (const m of scan.matchAll(re)) {
      if (m[0] === '') continue;
      // A pattern may start on the sentence break it needs ("(?:^|[.!?\n]\s*)stop…"): trim it.
      const lead = /^[.!?\n\s]*/.exec(m[0])![0].length;
      const start = m.index + lead;
      if (excuse !== null && excuse.test(before(scan, start))) continue;
      out.push({ ruleId: rule.id, category: rule.category, match: text.slice(start, m.index + m[0].length), start, end: m.index + m[0].length });
    }
  }
  return out.sort((a, b) => a.start - b.start || a.ruleId.localeCompare(b.ruleId));
}

/** Whether `text` ends with the disclaimer and contains it exactly once. */
export function hasDisclaimerOnce(text: string): boolean {
  return text.trimEnd().endsWith(DISCLAIMER) && text.split(DISCLAIMER).length === 2;
}

/** Scans, replaces a tripped answer by the fallback (when enabled), and adds the disclaimer. */
export function applySafety(raw: string, config: SafetyConfig = {}): SafetyResult {
  const violations = findViolations(raw, config);
  const tripped = violations.length > 0;
  const fallbackUsed = tripped && config.enabled !== false;
  const body = fallbackUsed ? (config.fallback ?? SAFE_FALLBACK) : raw;
  const wantDisclaimer = config.disclaimer !== false;
  const text = wantDisclaimer ? withDisclaimer(body) : body;
  return { text, raw, violations, tripped, fallbackUsed, disclaimerAdded: wantDisclaimer && !hasDisclaimerOnce(body) };
}
