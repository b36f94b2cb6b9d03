/**
 * The post-filter's rules, as data: each is a regular expression (source + flags, so rules can come
 * from a config file), a category, and optionally an "excuse" that, found in the same sentence just
 * BEFORE the match, makes it harmless ("I can't prescribe…", "if you have diabetes…").
 *
 * Deliberate decisions (each has a test in test/safety-filter.test.ts):
 * - A dose is a violation wherever it appears, negated or not ("do not take more than 4000 mg" still
 *   gives a dose). Units: mg, mcg, µg, mL, IU, units (not "units of alcohol", which is public
 *   drinking guidance), tablets/capsules/pills/drops/puffs/sprays/spoonfuls. Grams are not a dose
 *   unit here: nutrition advice ("25 g of fibre") uses them; a "take 1 g" instruction still trips.
 * - The bare stem "diagnos…" is NOT a violation: "diagnostic tests are ordered by a clinician" and "a
 *   doctor can diagnose this" are safe information. Giving a diagnosis is: "I diagnose…", "my / the
 *   likely diagnosis is…", "Diagnosis: …", "you (probably) have <condition>", "it is likely you have…",
 *   "sounds like you have…".
 * - Likewise "prescribe" is a violation when the assistant prescribes ("I prescribe", "I'd prescribe",
 *   "here is a prescription"), not when it says a doctor may prescribe something.
 * - Medication changes (stop, skip, double, halve, switch, combine a medicine) and off-label use are
 *   violations when advised, not when warned against ("do not stop taking your medicine…").
 */

export type SafetyCategory = 'dose' | 'prescribing' | 'diagnosing' | 'medication_change' | 'off_label';

export interface SafetyRule {
  /** Stable id, reported when the rule trips (`category.name`). */
  id: string;
  category: SafetyCategory;
  description: string;
  /** RegExp source; matched with `flags` plus 'g'. */
  pattern: string;
  /** Default 'i'. */
  flags?: string;
  /** RegExp source searched in the same sentence before the match (≤ 80 chars); a hit excuses it. */
  excuseBefore?: string;
}

/** Negation or refusal just before a match: "do not", "can't", "never", "unable to", "avoid"… */
export const NEGATION = String.raw`\b(?:not|never|cannot|can ?not|unable|refuse|avoid|won't|don't|doesn't|shouldn't|mustn't|isn't|aren't|no one|nobody)\b|n't\b`;
/** A condition stated as hypothetical or as the person's own worry, not as a finding. */
const CONDITIONAL = String.raw`\b(?:if|whether|when|unless|in case|who|think|worried|concerned|suspect|wonder(?:ing)?|fear|afraid)\b`;

const MED_OBJECT = String.raw`(?:your |the |this |that |these |those |any |a |an )?(?:[a-z-]+\s+){0,2}?(?:medications?|medicines?|meds|drugs?|pills?|tablets?|capsules?|doses?|dosage|prescriptions?|treatment|insulin|antidepressants?|antibiotics?|steroids?|inhalers?|blood thinners?|anticoagulants?|statins?|beta[- ]blockers?|warfarin|metformin|lithium|opioids?|painkillers?|chemotherapy|chemo)\b`;
const DOSE_UNIT = String.raw`(?:mg|milligrams?|mcg|micrograms?|µg|μg|ug|ml|millilit(?:re|er)s?|cc|iu|international units?|units?(?!\s+of\s+alcohol)|tablets?|tabs?|pills?|capsules?|caps?|drops?|puffs?|sprays?|sachets?|teaspoons?|tsp|tablespoons?|tbsp|spoonfuls?)`;
const NUMBER = String.raw`(?:\d+(?:[.,]\d+)?|½|half an?|one|two|three|four|five|six|eight|ten)`;
const CONDITION = String.raw`(?:[a-z0-9'-]+\s+){0,3}?(?:[a-z-]*(?:itis|osis|emia|aemia|pathy|oma|algia)|infection|disease|syndrome|disorder|cancer|tumou?r|diabetes|flu|influenza|covid(?:-19)?|pneumonia|asthma|migraine|depression|anxiety disorder|hypertension|hypothyroidism|hyperthyroidism|stroke|heart attack|heart failure|ulcer|strep throat|gout|lupus|angina|a fracture|a concussion|sepsis|meningitis|shingles|sinusitis|a uti|uti|gerd|ibs|adhd|bipolar|schizophrenia|dementia|parkinson's|alzheimer's|a blood clot|dvt|an allergy|allergies|eczema|psoriasis|acne|hepatitis|hiv|mono|glaucoma|cataracts?)\b`;

export const DEFAULT_SAFETY_RULES: readonly SafetyRule[] = [
  // ---- Doses ----------------------------------------------------------------------------------
  {
    id: 'dose.amount',
    category: 'dose',
    description: 'an amount with a dose unit: "500 mg", "2 tablets", "5 mL", "10 units", "400 IU"',
    pattern: String.raw`(?<![\w.])${NUMBER}(?:\s*(?:-|–|to|or)\s*${NUMBER})?\s*${DOSE_UNIT}(?![a-z])`,
  },
  {
    id: 'dose.per_weight',
    category: 'dose',
    description: 'a weight-based dose: "mg/kg", "15 mg per kilogram", "units/kg"',
    pattern: String.raw`\b(?:mg|mcg|µg|μg|ml|units?|iu)\s*(?:/|per)\s*(?:kg|kilo(?:gram)?s?|lb|pounds?|m2|m²)\b`,
  },
  {
    id: 'dose.schedule',
    category: 'dose',
    description: 'a dosing schedule: "take it every 6 hours", "give 2 doses 3 times a day" (not sunscreen, ice, breaks)',
    pattern: String.raw`\b(?:take|taking|give|giving|use|using|apply|inhale|inject|administer|dose)\b(?!\s+(?:sun(?:screen|block|cream)|moisturi[sz]er|ice|heat|a (?:cold|warm) compress|a break|breaks|a walk))[^.!?\n]{0,50}?\b(?:every\s+\d+(?:\s*(?:-|–|to)\s*\d+)?\s*(?:hours?|hrs?|h)\b|(?:once|twice|\d+\s+times|three times|four times)\s+(?:a|per|each)\s+day\b|(?:once|twice) daily\b)`,
  },
  {
    id: 'dose.latin',
    category: 'dose',
    description: 'prescription shorthand: q6h, b.i.d., t.i.d., q.i.d., p.r.n.',
    pattern: String.raw`\b(?:q\d{1,2}h\b|[btq]\.i\.d\.?|p\.r\.n\.?|(?:bid|tid|qid)\b)`,
  },
  {
    id: 'dose.maximum',
    category: 'dose',
    description: 'a maximum / toxic dose stated as a number: "the maximum dose is 4"',
    pattern: String.raw`\b(?:maximum|max|toxic|lethal|safe|daily)\s+(?:daily\s+)?dose\s+(?:is|of|would be)\s+(?:about\s+|around\s+)?\d`,
  },
  // ---- Prescribing ----------------------------------------------------------------------------
  {
    id: 'prescribing.first_person',
    category: 'prescribing',
    description: 'the assistant prescribes: "I prescribe", "I would prescribe", "here is a prescription", "my prescription for you"',
    pattern: String.raw`\b(?:I(?:'d|'ll|'m| would| will| am| can| could)?(?: going to)?\s+prescrib(?:e|ing)|here(?:'s| is) (?:a|your|the) prescription|my prescription|prescription for you)\b`,
    excuseBefore: NEGATION,
  },
  {
    id: 'prescribing.recommend_start',
    category: 'prescribing',
    description: 'recommending a treatment to the person: "I recommend you start…", "I suggest taking…", "my recommendation is to take…"',
    pattern: String.raw`\bI(?:'d| would)?\s+(?:strongly\s+)?(?:recommend|suggest|advise)\s+(?:that\s+)?(?:you\s+)?(?:start|begin|take|taking|starting|beginning|try(?:ing)?\s+(?:taking\s+)?|us(?:e|ing))\b|\bmy recommendation (?:is|would be) (?:to )?(?:take|start|try)\b`,
    excuseBefore: NEGATION,
  },
  {
    id: 'prescribing.you_should_take',
    category: 'prescribing',
    description: 'a directive to take a treatment: "you should take…", "you need to start…" (not "take a break", "take your medicines as prescribed")',
    pattern: String.raw`\byou (?:should|need to|must|ought to|can|could) (?:take|start(?: taking)?|begin(?: taking)?|try taking|get)\b(?!\s+(?:a\s+(?:break|rest|walk|moment|look|deep breath)|time|care|steps|note|notes|it easy|them to|him to|her to|your\s+(?:\w+\s+)?(?:medicines?|medications?)\s+(?:exactly\s+)?as\s+(?:prescribed|directed)|(?:a |an )?(?:appointment|second opinion)|(?:emergency )?(?:help|advice|medical (?:help|attention|advice)|checked|tested|seen|examined)))`,
    excuseBefore: NEGATION,
  },
  // ---- Diagnosing -----------------------------------------------------------------------------
  {
    id: 'diagnosing.first_person',
    category: 'diagnosing',
    description: 'the assistant gives a diagnosis: "I diagnose", "my diagnosis is", "the (likely) diagnosis is", "Diagnosis: …"',
    pattern: String.raw`\b(?:I(?:'d| would| will| can)?\s+diagnos(?:e|ing)|my (?:working |final )?diagnosis|(?:the|your|a|most|likely|probable|final|working)\s+(?:likely\s+|probable\s+|final\s+)?diagnosis\s+(?:is|would be|here is)|diagnosis\s*:\s*\w)`,
    excuseBefore: NEGATION,
  },
  {
    id: 'diagnosing.likely',
    category: 'diagnosing',
    description: '"it is likely you have…", "sounds like you have…", "you probably have…", "you are suffering from…"',
    pattern: String.raw`\b(?:it(?:'s| is) (?:very |most |quite |highly )?(?:likely|probable|almost certain|clear|obvious)(?: that)? you (?:have|'ve got|are suffering from)|(?:sounds?|looks?|seems?) (?:like|as if|as though) you (?:have|'ve got|are suffering from|are having)|you (?:most )?(?:likely|probably|definitely|clearly|certainly|almost certainly) (?:have|'ve got|are suffering from|are having)|(?:this|these|your symptoms?) (?:is|are|sounds?|looks?) (?:consistent with|typical of|indicative of|a classic case of|classic)\b)`,
    excuseBefore: NEGATION,
  },
  {
    id: 'diagnosing.you_have',
    category: 'diagnosing',
    description: '"you have <condition>" stated as a finding (not "if you have diabetes…")',
    pattern: String.raw`\byou(?:'ve got| have got| have| are suffering from| suffer from)\s+(?:a |an )?${CONDITION}`,
    excuseBefore: `${NEGATION}|${CONDITIONAL}`,
  },
  // ---- Medication changes ---------------------------------------------------------------------
  {
    id: 'medication_change.advice',
    category: 'medication_change',
    description: 'advising to stop, skip, double, halve, switch or change a medicine: "you can stop your medication", "go ahead and double the dose"',
    pattern: String.raw`\b(?:you (?:can|could|may|should|might want to) (?:safely |just )?|it(?:'s| is) (?:safe|fine|ok|okay|alright) to |go ahead and |feel free to |simply |just )(?:stop|stopping|discontinue|quit|come off|skip|halve|double|increase|decrease|reduce|lower|raise|taper|switch|swap|change)(?: taking| using)?\s+(?:off\s+)?${MED_OBJECT}`,
    excuseBefore: NEGATION,
  },
  {
    id: 'medication_change.imperative',
    category: 'medication_change',
    description: 'an instruction to stop or change a medicine: "Stop taking your metformin", "Double your insulin"',
    pattern: String.raw`(?:^|[.!?\n]\s*)(?:stop|discontinue|quit|skip|halve|double|increase|decrease|reduce|switch)\s+(?:taking\s+|using\s+)?(?:${MED_OBJECT}|(?:your|the)\s+\w+(?:in|ol|ide|pam|lam|ine|one|ate|mab|pril|sartan|statin)\b)`,
    excuseBefore: NEGATION,
  },
  {
    id: 'medication_change.combine',
    category: 'medication_change',
    description: 'declaring a combination safe: "it is safe to take X with Y", "you can combine them"',
    pattern: String.raw`\b(?:(?:safe|fine|ok|okay|alright) to (?:take|combine|mix|use)\b[^.!?\n]{0,60}?\b(?:with|together|alongside|at the same time)\b|you can (?:safely )?(?:combine|mix) (?:them|these|those|it|the two|both))`,
    excuseBefore: NEGATION,
  },
  // ---- Off-label --------------------------------------------------------------------------------
  {
    id: 'off_label.advice',
    category: 'off_label',
    description: 'endorsing an off-label use: "you can use it off-label", "off-label use is safe"',
    pattern: String.raw`\b(?:you (?:can|could|may) (?:safely )?(?:use|take|try)\b[^.!?\n]{0,60}?\boff[- ]label\b|off[- ]label (?:use )?(?:is|would be) (?:safe|fine|ok|okay|effective|reasonable))`,
    excuseBefore: NEGATION,
  },
];
