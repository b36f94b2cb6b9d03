/**
 * Patient narratives in words from a seeded template grammar: three styles (prose, clinical note,
 * labelled list), sections and items in random order, synonyms, and units written in several ways,
 * so a model cannot learn one sentence. Only the features passed in are mentioned: an incomplete
 * variant's narrative simply does not contain its dropped items. The outcome is never mentioned.
 */
import type { Rng } from '../../util/random.ts';
import { readingOf, type Reading } from './clinical.ts';
import type { HeartFeature } from './records.ts';

export type NarrativeStyle = 'prose' | 'note' | 'list';

export interface Narrative {
  text: string;
  style: NarrativeStyle;
  /** Each numeric value with its unit exactly as the narrative wrote it (answers quote these). */
  rendered: Partial<Record<HeartFeature, string>>;
  /** The values as shown (age in whole years, platelets to the nearest thousand), for readings. */
  shown: Partial<Record<HeartFeature, number>>;
}

type Values = Partial<Record<HeartFeature, number>>;
const LABS: readonly HeartFeature[] = ['serum_creatinine', 'serum_sodium', 'creatinine_phosphokinase', 'platelets'];
const HISTORY: readonly HeartFeature[] = ['anaemia', 'diabetes', 'high_blood_pressure', 'smoking'];

const pick = <T>(rng: Rng, xs: readonly T[]): T => xs[rng.int(xs.length)]!;
const cap = (s: string): string => s.charAt(0).toUpperCase() + s.slice(1);
const thousands = (n: number): string => String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
function joinList(rng: Rng, items: string[], conj = 'and'): string {
  if (items.length <= 1) return items.join('');
  const oxford = rng.int(2) === 0 && items.length > 2 ? ',' : '';
  return `${items.slice(0, -1).join(', ')}${oxford} ${conj} ${items[items.length - 1]}`;
}

/** Chooses how each value is written (units, rounding) once per narrative. */
function renderValues(v: Values, rng: Rng): { rendered: Partial<Record<HeartFeature, string>>; shown: Values } {
  const r: Partial<Record<HeartFeature, string>> = {};
  const shown: Values = { ...v };
  if (v.age !== undefined) {
    shown.age = Math.floor(v.age);
    r.age = `${shown.age} years`;
  }
  if (v.ejection_fraction !== undefined) r.ejection_fraction = `${v.ejection_fraction}${pick(rng, ['%', '%', ' percent', ' %'])}`;
  if (v.serum_creatinine !== undefined) {
    const cr = v.serum_creatinine;
    const mg = Number.isInteger(cr) ? cr.toFixed(1) : String(cr);
    r.serum_creatinine = pick(rng, [`${mg} mg/dL`, `${mg} mg/dL`, `${mg} mg/dl`, `${Math.round(cr * 88.4)} µmol/L`]);
  }
  if (v.serum_sodium !== undefined) r.serum_sodium = `${v.serum_sodium} ${pick(rng, ['mEq/L', 'mEq/L', 'mmol/L'])}`;
  if (v.creatinine_phosphokinase !== undefined) {
    const c = v.creatinine_phosphokinase;
    r.creatinine_phosphokinase = `${rng.int(2) === 0 ? thousands(c) : String(c)} ${pick(rng, ['mcg/L', 'mcg/L', 'µg/L'])}`;
  }
  if (v.platelets !== undefined) {
    const k = Math.round(v.platelets / 1000);
    shown.platelets = k * 1000;
    r.platelets = pick(rng, [`${thousands(k * 1000)}/µL`, `${thousands(k * 1000)} per µL`, `${k} ×10⁹/L`, `${k},000/mm³`]);
  }
  if (v.time !== undefined) r.time = `${v.time} days`;
  return { rendered: r, shown };
}

/** Clinical context for a reading: a parenthetical (" (hyponatraemia)") or a clause (", which …"). */
function context(rng: Rng, f: HeartFeature, reading: Reading, form: 'paren' | 'clause'): string {
  const banks: Partial<Record<HeartFeature, Partial<Record<Reading, [string[], string[]]>>>> = {
    ejection_fraction: {
      'severely reduced': [['severely reduced', 'severely impaired systolic function'], [', which is severely reduced', ', a severely reduced value']],
      reduced: [['reduced', 'reduced ejection fraction'], [', which is reduced', ', consistent with reduced systolic function']],
      'mildly reduced': [['mildly reduced'], [', which is mildly reduced', ', in the mildly reduced range']],
      preserved: [['preserved', 'within the preserved range'], [', which is preserved', ', a preserved value']],
    },
    serum_creatinine: {
      high: [
        ['elevated; suggests kidney dysfunction', 'above normal, suggesting impaired kidney function'],
        [', above the normal range, suggesting kidney dysfunction', ', which is raised and points to reduced kidney function'],
      ],
      normal: [['normal', 'within normal limits'], [', within the normal range', '']],
    },
    serum_sodium: {
      low: [['hyponatraemia', 'low; hyponatraemia'], [', which indicates hyponatraemia', ', below the normal range (hyponatraemia)']],
      high: [['hypernatraemia', 'high; hypernatraemia'], [', which indicates hypernatraemia', ', above the normal range']],
      normal: [['normal', 'within normal limits'], [', within the normal range', '']],
    },
    creatinine_phosphokinase: {
      high: [['above normal', 'raised'], [', which is above the normal range', ', an elevated level']],
      normal: [['normal', 'within normal limits'], [', within the normal range', '']],
    },
    platelets: {
      low: [['low; thrombocytopenia', 'below normal'], [', which is low (thrombocytopenia)', ', below the normal range']],
      high: [['high; thrombocytosis', 'above normal'], [', which is high (thrombocytosis)', ', above the normal range']],
      normal: [['normal', 'within normal limits'], [', within the normal range', '']],
    },
  };
  const bank = banks[f]?.[reading];
  if (!bank) return '';
  return form === 'paren' ? ` (${pick(rng, bank[0])})` : pick(rng, bank[1]);
}

interface Person {
  sex: number | undefined;
  /** Subject pronoun or "the patient". */
  he: string;
  /** Possessive. */
  his: string;
}

function person(sex: number | undefined, rng: Rng): Person {
  if (sex === 1) return { sex, he: 'he', his: 'his' };
  if (sex === 0) return { sex, he: 'she', his: 'her' };
  return { sex, he: 'the patient', his: pick(rng, ["the patient's", 'their']) };
}

function opener(v: Values, p: Person, rng: Rng): string {
  const hf = pick(rng, ['heart failure', 'chronic heart failure', 'heart failure']);
  const man = p.sex === undefined ? '' : pick(rng, p.sex === 1 ? ['man', 'male patient', 'man'] : ['woman', 'female patient', 'woman']);
  const male = p.sex === 1 ? 'male' : 'female';
  if (v.age !== undefined && p.sex !== undefined) {
    return pick(rng, [
      `A ${v.age}-year-old ${man} with ${hf}.`,
      `The patient is a ${v.age}-year-old ${man} with ${hf}.`,
      `${cap(man)}, aged ${v.age}, followed for ${hf}.`,
      `This ${v.age}-year-old ${male} patient has ${hf}.`,
      `Patient: ${male}, ${v.age} years old, with ${hf}.`,
    ]);
  }
  if (v.age !== undefined) {
    return pick(rng, [
      `A ${v.age}-year-old patient with ${hf}.`,
      `The patient, aged ${v.age}, has ${hf}.`,
      `Patient aged ${v.age} years with ${hf}.`,
    ]);
  }
  if (p.sex !== undefined) {
    return pick(rng, [`A ${man} with ${hf}.`, `The patient is a ${man} with ${hf}.`, `${cap(male)} patient with ${hf}.`]);
  }
  return pick(rng, ['A patient with heart failure.', 'This patient has heart failure.', 'Patient with chronic heart failure.']);
}

const POSITIVE: Record<string, string[]> = {
  anaemia: ['anaemia', 'anaemia'],
  diabetes: ['diabetes', 'diabetes mellitus'],
  high_blood_pressure: ['high blood pressure', 'hypertension'],
};
const NEGATIVE_NOUN: Record<string, string[]> = {
  anaemia: ['anaemia'],
  diabetes: ['diabetes'],
  high_blood_pressure: ['high blood pressure', 'hypertension'],
};

/** The history sentence(s) for anaemia, diabetes, high blood pressure and smoking. */
function history(v: Values, p: Person, rng: Rng): string[] {
  const conds = ['anaemia', 'diabetes', 'high_blood_pressure'].filter((f) => v[f as HeartFeature] !== undefined);
  rng.shuffle(conds);
  const pos = conds.filter((f) => v[f as HeartFeature] === 1).map((f) => pick(rng, POSITIVE[f]!));
  const neg = conds.filter((f) => v[f as HeartFeature] === 0).map((f) => pick(rng, NEGATIVE_NOUN[f]!));
  const He = cap(p.he);
  const out: string[] = [];
  if (rng.int(3) === 0) {
    // one sentence per item
    for (const f of conds) {
      const has = v[f as HeartFeature] === 1;
      const noun = pick(rng, has ? POSITIVE[f]! : NEGATIVE_NOUN[f]!);
      out.push(
        has
          ? pick(rng, [`${He} has ${noun}.`, `There is a history of ${noun}.`, `${cap(noun)} is present.`])
          : pick(rng, [`${He} does not have ${noun}.`, `There is no history of ${noun}.`, `No ${noun}.`]),
      );
    }
  } else if (conds.length > 0) {
    const intro = pick(rng, ['history', 'pmh', 'has']);
    if (intro === 'pmh') {
      const parts = [...pos, ...neg.map((n) => `no ${n}`)];
      out.push(`${pick(rng, ['Medical history', 'Past history', 'Comorbidities'])}: ${parts.join('; ')}.`);
    } else if (pos.length > 0 && neg.length > 0) {
      out.push(`${He} has ${joinList(rng, pos)}${pick(rng, [', but no ', ', without ', '; there is no '])}${joinList(rng, neg, 'or')}.`);
    } else if (pos.length > 0) {
      out.push(pick(rng, [`${He} has ${joinList(rng, pos)}.`, `${His(p)} history includes ${joinList(rng, pos)}.`]));
    } else {
      out.push(pick(rng, [`${He} has no ${joinList(rng, neg, 'or')}.`, `There is no history of ${joinList(rng, neg, 'or')}.`]));
    }
  }
  if (v.smoking !== undefined) {
    const s =
      v.smoking === 1
        ? pick(rng, [`${He} smokes.`, `${He} is a smoker.`, `${He} is a current smoker.`])
        : pick(rng, [`${He} does not smoke.`, `${He} is a non-smoker.`, `${He} is not a smoker.`]);
    if (rng.int(2) === 0) out.unshift(s);
    else out.push(s);
  }
  return out;
}
const His = (p: Person): string => cap(p.his);

function efSentence(v: Values, r: Partial<Record<HeartFeature, string>>, p: Person, rng: Rng): string {
  const val = r.ejection_fraction!;
  const reading = readingOf('ejection_fraction', v)!;
  const ctx = context(rng, 'ejection_fraction', reading, rng.int(2) === 0 ? 'paren' : 'clause');
  return pick(rng, [
    `The ejection fraction is ${val}${ctx}.`,
    `Echocardiography shows an ejection fraction of ${val}${ctx}.`,
    `${cap(p.he)} has a left ventricular ejection fraction (LVEF) of ${val}${ctx}.`,
    `An echocardiogram measured the ejection fraction at ${val}${ctx}.`,
    `${His(p)} ejection fraction is ${val}${ctx}.`,
  ]);
}

/** Each lab's names as [noun, verb] pairs ("platelets are"), and the noun after "a … of". */
const LAB_NOUNS: Record<string, Array<[string, string]>> = {
  serum_creatinine: [['serum creatinine', 'is'], ['creatinine', 'is'], ['blood creatinine', 'is']],
  serum_sodium: [['serum sodium', 'is'], ['sodium', 'is'], ['blood sodium', 'is']],
  creatinine_phosphokinase: [['creatinine phosphokinase (CPK)', 'is'], ['CPK', 'is'], ['CPK enzyme level', 'is']],
  platelets: [['platelet count', 'is'], ['platelets', 'are']],
};
const LAB_OF: Record<string, string> = {
  serum_creatinine: 'serum creatinine',
  serum_sodium: 'serum sodium',
  creatinine_phosphokinase: 'CPK level',
  platelets: 'platelet count',
};

function labSentences(v: Values, r: Partial<Record<HeartFeature, string>>, p: Person, rng: Rng): string[] {
  const labs = rng.shuffle(LABS.filter((f) => v[f] !== undefined));
  if (labs.length === 0) return [];
  if (labs.length > 1 && rng.int(2) === 0) {
    // all labs in one sentence, parenthetical context
    const items = labs.map((f) => `${pick(rng, LAB_NOUNS[f]!)[0]} ${r[f]}${context(rng, f, readingOf(f, v)!, 'paren')}`);
    const intro = pick(rng, ['Laboratory results:', 'Blood tests show', 'Labs show', 'Bloodwork reveals', 'On blood tests:']);
    return [`${intro} ${joinList(rng, items)}.`];
  }
  return labs.map((f) => {
    const [noun, is] = pick(rng, LAB_NOUNS[f]!);
    const ctx = context(rng, f, readingOf(f, v)!, rng.int(2) === 0 ? 'paren' : 'clause');
    return pick(rng, [
      `${cap(noun)} ${is} ${r[f]}${ctx}.`,
      `${His(p)} ${noun} ${is} ${r[f]}${ctx}.`,
      `Blood tests show a ${LAB_OF[f]} of ${r[f]}${ctx}.`,
      `The ${LAB_OF[f]} measured ${r[f]}${ctx}.`,
    ]);
  });
}

function timeSentence(r: Partial<Record<HeartFeature, string>>, rng: Rng): string {
  return pick(rng, [`The follow-up period was ${r.time}.`, `Followed up for ${r.time}.`, `Follow-up lasted ${r.time}.`]);
}

function prose(v: Values, r: Partial<Record<HeartFeature, string>>, p: Person, rng: Rng): string {
  const sections: string[][] = [history(v, p, rng)];
  if (v.ejection_fraction !== undefined) sections.push([efSentence(v, r, p, rng)]);
  sections.push(labSentences(v, r, p, rng));
  rng.shuffle(sections);
  const parts = [opener(v, p, rng), ...sections.flat()];
  if (v.time !== undefined) parts.push(timeSentence(r, rng));
  return parts.filter((s) => s !== '').join(' ');
}

const NOTE_LABELS: Record<string, string[]> = {
  ejection_fraction: ['EF', 'LVEF', 'Ejection fraction'],
  serum_creatinine: ['Cr', 'Creatinine', 'Serum creatinine'],
  serum_sodium: ['Na', 'Sodium', 'Serum sodium'],
  creatinine_phosphokinase: ['CPK', 'CPK'],
  platelets: ['Plt', 'Platelets'],
};

/** Clinical-note shorthand: "75-year-old M, HF. PMH: DM, HTN; no anaemia. Non-smoker. EF 20% (...)". */
function note(v: Values, r: Partial<Record<HeartFeature, string>>, p: Person, rng: Rng): string {
  const sexWord = p.sex === undefined ? '' : pick(rng, p.sex === 1 ? ['M', 'male', 'man'] : ['F', 'female', 'woman']);
  let head = pick(rng, ['HF patient', 'Heart failure patient', 'Pt with HF']);
  if (v.age !== undefined && sexWord) head = pick(rng, [`${v.age}-year-old ${sexWord}, heart failure`, `${sexWord}, ${v.age} y, HF`]);
  else if (v.age !== undefined) head = `${v.age}-year-old, heart failure`;
  else if (sexWord) head = `${sexWord}, heart failure`;
  const abbrev: Record<string, [string, string]> = {
    anaemia: ['anaemia', 'anaemia'],
    diabetes: ['DM', 'diabetes'],
    high_blood_pressure: ['HTN', 'hypertension'],
  };
  const hist = rng.shuffle(['anaemia', 'diabetes', 'high_blood_pressure'].filter((f) => v[f as HeartFeature] !== undefined));
  const useAbbrev = rng.int(2) === 0;
  const histItems = hist.map((f) => `${v[f as HeartFeature] === 1 ? '' : 'no '}${abbrev[f]![useAbbrev ? 0 : 1]}`);
  const parts: string[][] = [];
  if (histItems.length > 0) parts.push([`${pick(rng, ['PMH', 'Hx', 'History'])}: ${histItems.join(', ')}`]);
  if (v.smoking !== undefined) parts.push([v.smoking === 1 ? pick(rng, ['smoker', 'current smoker']) : pick(rng, ['non-smoker', 'not a smoker'])]);
  const measures = rng.shuffle(['ejection_fraction', ...LABS].filter((f) => v[f as HeartFeature] !== undefined) as HeartFeature[]);
  const mItems = measures.map((f) => `${pick(rng, NOTE_LABELS[f]!)} ${r[f]}${context(rng, f, readingOf(f, v)!, 'paren')}`);
  if (mItems.length > 0) {
    const sep = pick(rng, ['; ', '. ', ', ']);
    parts.push([mItems.join(sep)]);
  }
  rng.shuffle(parts);
  const body = [head, ...parts.flat()];
  if (v.time !== undefined) body.push(`follow-up ${r.time}`);
  return body.map((s) => cap(s)).join('. ') + '.';
}

const LIST_LABELS: Record<HeartFeature, string[]> = {
  age: ['Age'],
  sex: ['Sex'],
  anaemia: ['Anaemia'],
  diabetes: ['Diabetes'],
  high_blood_pressure: ['High blood pressure', 'Hypertension'],
  smoking: ['Smoking', 'Smoker'],
  ejection_fraction: ['Ejection fraction', 'LVEF'],
  serum_creatinine: ['Serum creatinine', 'Creatinine'],
  serum_sodium: ['Serum sodium', 'Sodium'],
  creatinine_phosphokinase: ['Creatinine phosphokinase (CPK)', 'CPK'],
  platelets: ['Platelets', 'Platelet count'],
  time: ['Follow-up', 'Follow-up period'],
};

/** A labelled list, one item a line, in a random order within groups. */
function list(v: Values, r: Partial<Record<HeartFeature, string>>, rng: Rng): string {
  const bullet = pick(rng, ['- ', '• ', '']);
  const yes = pick(rng, [['yes', 'no'], ['present', 'absent'], ['yes', 'none']] as const);
  const line = (f: HeartFeature): string => {
    const label = pick(rng, LIST_LABELS[f]);
    let value: string;
    if (f === 'sex') value = v.sex === 1 ? 'male' : 'female';
    else if (f === 'age') value = r.age!;
    else if (f === 'smoking') value = v.smoking === 1 ? 'yes' : 'no';
    else if ((HISTORY as readonly string[]).includes(f)) value = v[f] === 1 ? yes[0] : yes[1];
    else value = `${r[f]}${readingOf(f, v) ? context(rng, f, readingOf(f, v)!, 'paren') : ''}`;
    return `${bullet}${label}: ${value}`;
  };
  const groups: HeartFeature[][] = [
    (['age', 'sex'] as HeartFeature[]).filter((f) => v[f] !== undefined),
    rng.shuffle(HISTORY.filter((f) => v[f] !== undefined)),
    rng.shuffle(['ejection_fraction', ...LABS].filter((f) => v[f as HeartFeature] !== undefined) as HeartFeature[]),
  ];
  const tail = groups.slice(1);
  if (rng.int(2) === 0) tail.reverse();
  const order = [...groups[0]!, ...tail.flat()];
  if (v.time !== undefined) order.push('time');
  const title = pick(rng, ['Patient with heart failure:', 'Heart failure patient.', 'Patient summary (heart failure):']);
  return [title, ...order.map(line)].join('\n');
}

/**
 * Writes the narrative of one patient from the features given (others are omitted entirely).
 * Numbers appear with their units; abnormal values get their clinical reading.
 */
export function heartNarrative(values: Values, rng: Rng): Narrative {
  const { rendered, shown } = renderValues(values, rng);
  const p = person(shown.sex, rng);
  const roll = rng.uniform();
  const style: NarrativeStyle = roll < 0.5 ? 'prose' : roll < 0.75 ? 'note' : 'list';
  const text = style === 'prose' ? prose(shown, rendered, p, rng) : style === 'note' ? note(shown, rendered, p, rng) : list(shown, rendered, rng);
  return { text, style, rendered, shown };
}
