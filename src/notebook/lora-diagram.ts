/**
 * The LoRA picture for teaching: h = W·x + (alpha/r)·B·(A·x), with W frozen (grey, not updated) and
 * A, B trained (coloured), their shapes and parameter counts. SVG, plus the same facts as text.
 */
import { escapeHtml, Rendered } from './display.ts';

export interface LoraDiagramOptions {
  inFeatures: number;
  outFeatures: number;
  r: number;
  alpha: number;
  /** rsLoRA scaling alpha/√r (default false: alpha/r). */
  rslora?: boolean;
  /** Layer name shown in the title, e.g. "qkv_proj". */
  name?: string;
}

export interface LoraDiagramFacts {
  frozen: number;
  trainable: number;
  /** trainable / frozen. */
  fraction: number;
  scaling: number;
}

export function loraFacts(o: LoraDiagramOptions): LoraDiagramFacts {
  const frozen = o.inFeatures * o.outFeatures;
  const trainable = o.r * (o.inFeatures + o.outFeatures);
  return { frozen, trainable, fraction: trainable / frozen, scaling: o.rslora === true ? o.alpha / Math.sqrt(o.r) : o.alpha / o.r };
}

const n = (v: number): string => v.toLocaleString('en-US');
const pct = (f: number): string => `${Number((f * 100).toPrecision(3))}%`;

export class LoraDiagram extends Rendered {
  constructor(
    readonly facts: LoraDiagramFacts,
    bundle: { 'image/svg+xml': string; 'text/plain': string },
  ) {
    super(bundle);
  }
}

export function loraDiagram(o: LoraDiagramOptions): LoraDiagram {
  for (const k of ['inFeatures', 'outFeatures', 'r'] as const) {
    if (!Number.isInteger(o[k]) || o[k] <= 0) throw new RangeError(`loraDiagram: ${k} must be a positive integer (found ${o[k]})`);
  }
  const f = loraFacts(o);
  const scale = o.rslora === true ? 'α/√r' : 'α/r';
  const title = `LoRA${o.name !== undefined ? ` on ${o.name}` : ''}: h = W·x + ${scale}·B·A·x`;
  const text = [
    title,
    `  W [${o.outFeatures}, ${o.inFeatures}]  frozen     ${n(f.frozen)} parameters (not updated)`,
    `  A [${o.r}, ${o.inFeatures}]  trained    random init (kaiming-uniform)`,
    `  B [${o.outFeatures}, ${o.r}]  trained    init 0, so B·A = 0 and training starts from W exactly`,
    `  A + B: ${n(f.trainable)} trainable parameters = ${pct(f.fraction)} of W; scaling ${scale} = ${Number(f.scaling.toPrecision(4))}`,
  ].join('\n');

  const grey = '#9e9e9e';
  const train = '#ef6c00';
  const box = (x: number, y: number, w: number, h: number, fill: string, stroke: string, dash = ''): string =>
    `<rect x="${x}" y="${y}" width="${w}" height="${h}" rx="6" fill="${fill}" stroke="${stroke}" stroke-width="2"${dash !== '' ? ` stroke-dasharray="${dash}"` : ''}/>`;
  const label = (x: number, y: number, s: string, extra = ''): string => `<text x="${x}" y="${y}" text-anchor="middle"${extra}>${escapeHtml(s)}</text>`;
  const arrow = (x1: number, y1: number, x2: number, y2: number): string => `<path d="M${x1} ${y1} L${x2} ${y2}" stroke="#555" stroke-width="1.5" fill="none" marker-end="url(#arr)"/>`;
  const svg = [
    '<svg xmlns="http://www.w3.org/2000/svg" width="640" height="270" viewBox="0 0 640 270" font-family="sans-serif" font-size="12">',
    '<defs><marker id="arr" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto"><path d="M0 0 L10 5 L0 10 z" fill="#555"/></marker></defs>',
    '<rect width="640" height="270" fill="white"/>',
    label(320, 20, title, ' font-size="14" font-weight="bold"'),
    // x
    box(20, 115, 70, 40, '#e3f2fd', '#1e88e5'),
    label(55, 133, 'x'),
    label(55, 148, `[N, ${o.inFeatures}]`, ' font-size="10"'),
    // W (frozen)
    box(170, 45, 150, 60, '#f5f5f5', grey, '5 3'),
    label(245, 68, `W  [${o.outFeatures}, ${o.inFeatures}]`, ' font-weight="bold"'),
    label(245, 86, `frozen · ${n(f.frozen)} params`, ` fill="${grey}"`),
    // A and B (trained)
    box(150, 170, 110, 60, '#fff3e0', train),
    label(205, 193, `A  [${o.r}, ${o.inFeatures}]`, ' font-weight="bold"'),
    label(205, 211, 'trained · random init', ` fill="${train}" font-size="11"`),
    box(300, 170, 110, 60, '#fff3e0', train),
    label(355, 193, `B  [${o.outFeatures}, ${o.r}]`, ' font-weight="bold"'),
    label(355, 211, 'trained · init 0', ` fill="${train}" font-size="11"`),
    // scaling, sum, output
    `<circle cx="460" cy="200" r="22" fill="white" stroke="${train}" stroke-width="2"/>`,
    label(460, 204, `×${Number(f.scaling.toPrecision(3))}`, ' font-size="11"'),
    label(460, 240, scale, ` fill="${train}" font-size="11"`),
    '<circle cx="510" cy="135" r="15" fill="white" stroke="#555" stroke-width="2"/>',
    label(510, 140, '+', ' font-size="16"'),
    box(555, 115, 70, 40, '#e8f5e9', '#43a047'),
    label(590, 133, 'h'),
    label(590, 148, `[N, ${o.outFeatures}]`, ' font-size="10"'),
    arrow(90, 128, 168, 80),
    arrow(90, 142, 148, 195),
    arrow(260, 200, 298, 200),
    arrow(410, 200, 437, 200),
    arrow(320, 75, 497, 128),
    arrow(478, 186, 500, 148),
    arrow(525, 135, 553, 135),
    label(320, 262, `trainable A+B: ${n(f.trainable)} = ${pct(f.fraction)} of W (rank r = ${o.r}, alpha = ${o.alpha})`, ' font-size="11"'),
    '</svg>',
  ].join('\n');
  return new LoraDiagram(f, { 'image/svg+xml': svg, 'text/plain': text });
}
