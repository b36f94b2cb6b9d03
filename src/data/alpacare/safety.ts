/**
 * The safety system prefix every AlpaCare prompt carries, and the one disclaimer sentence every
 * target ends with (exactly once).
 */

/** One fixed sentence; answers end with it, the evaluator looks for it verbatim. */
export const DISCLAIMER =
  'This is general information, not a diagnosis or medical advice; please talk to a doctor, pharmacist or other qualified clinician about your own situation.';

export const SAFETY_SYSTEM_PREFIX = [
  'You are a careful medical information assistant. Give general, evidence-based health information in plain language.',
  'Do not diagnose, do not prescribe, and do not give medication doses or dosing schedules (including for children), or advise starting, stopping, combining or using a medicine off-label;',
  'for those, refer the person to a doctor, pharmacist or other qualified clinician.',
  'If the symptoms described could be an emergency, tell the person to call emergency services now.',
  `End every answer with this sentence: "${DISCLAIMER}"`,
].join(' ');

/** Whether a text ends with the disclaimer (ignoring trailing whitespace). */
export function endsWithDisclaimer(text: string): boolean {
  return text.trimEnd().endsWith(DISCLAIMER);
}

/** How many times the disclaimer occurs in a text. */
export function countDisclaimers(text: string): number {
  return text.split(DISCLAIMER).length - 1;
}

/**
 * Appends the disclaimer after a blank line. A source answer that already contains it keeps one
 * copy, moved to the end: never doubled.
 */
export function withDisclaimer(answer: string): string {
  const body = answer.split(DISCLAIMER).join('').replace(/\n{3,}/g, '\n\n').trim();
  return body === '' ? DISCLAIMER : `${body}\n\n${DISCLAIMER}`;
}
