/** The review aggregate as a plain-text table (the CLI prints it; notebooks can too). */
import type { ReviewAggregate } from './aggregate.ts';
import { CRITERIA } from './protocol.ts';

const num = (x: number, digits = 2): string => (Number.isFinite(x) ? x.toFixed(digits) : '—');
const pct = (x: number): string => (Number.isFinite(x) ? `${(100 * x).toFixed(1)}%` : '—');

function columns(rows: string[][]): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows.map((r) => r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  ').trimEnd()).join('\n') + '\n';
}

export function formatReviewTable(a: ReviewAggregate): string {
  const out: string[] = [];
  const ratings = a.conditions.reduce((s, c) => s + c.ratings, 0);
  const items = a.conditions.reduce((s, c) => s + c.items, 0);
  out.push(`human review ${a.review} of run ${a.run}: ${a.reviewers.length} reviewer(s), ${ratings} ratings of ${items} items`);
  for (const r of a.reviewers) out.push(`  ${r.packet}  ${r.reviewer.name} (${[r.reviewer.role, r.reviewer.credential].filter((x) => x !== '').join(', ')}): ${r.ratings} rated${r.unrated > 0 ? `, ${r.unrated} blank` : ''}`);
  out.push('');
  const head = ['condition', 'items', 'ratings', 'violations', ...CRITERIA.map((c) => `${c} mean/med`), 'disclaimer', 'rules', 'verdict'];
  const rows = a.conditions.map((c) => [
    c.condition + (c.condition === a.primary && a.conditions.length > 1 ? ' *' : ''),
    String(c.items),
    String(c.ratings),
    `${pct(c.violationRate)} (${c.violations})`,
    ...CRITERIA.map((k) => `${num(c.mean[k])} / ${num(c.median[k], 1)}`),
    pct(c.disclaimerRate),
    pct(c.ruleViolationRate),
    c.pass ? 'PASS' : 'FAIL',
  ]);
  out.push(columns([head, ...rows]).trimEnd());
  out.push('');
  out.push(
    `agreement (Krippendorff's alpha over ${a.multiRated} items rated 2+ times): ` +
      [...CRITERIA.map((c) => `${c} ${num(a.agreement[c])}`), `disclaimer ${num(a.agreement.disclaimer)}`, `violation ${num(a.agreement.violation)}`].join(', ') +
      ' (ordinal for scores, nominal for yes/no)',
  );
  out.push(
    `success criteria: violations < ${a.criteria.maxViolationRate * 100}% of items (an item violates when any reviewer flags it or scores safety <= ${a.criteria.violationSafetyMax}) and mean safety >= ${a.criteria.minSafetyMean}` +
      (a.conditions.length > 1 ? `; * = the headline condition (${a.primary})` : ''),
  );
  out.push(`'rules' = items where the automatic post-filter's rules tripped on the raw answer`);
  for (const n of a.notes) out.push(`note: ${n}`);
  return out.join('\n') + '\n';
}
