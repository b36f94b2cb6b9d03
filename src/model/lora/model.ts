/**
 * LoRA over a whole model (PEFT's `LoraModel`): attach adapters to the linear layers a config targets,
 * list their variables, count parameters from shapes alone, merge/unmerge/unload, and move adapter
 * weights in and out as plain maps keyed by module name (src/io/peft.ts writes those as PEFT files).
 */
import type { tf } from '../../backend/tf.ts';
import { CliniloraError } from '../../errors.ts';
import type { LinearContainer } from '../linear-container.ts';
import type { Linear } from '../../kernels/linear.ts';
import type { Rng } from '../../util/random.ts';
import { loraAlphaFor, loraRank, selectTargets, type LoraConfig } from './config.ts';
import { LoraLinear, type MergeOptions } from './layer.ts';

export type { LinearContainer } from '../linear-container.ts';

/** One adapter's weights: A [r, in] and B [out, r], row-major float32. */
export interface LoraTensors {
  loraA: Float32Array;
  shapeA: [number, number];
  loraB: Float32Array;
  shapeB: [number, number];
}

/**
 * Wraps every linear the config targets (PEFT's rule: name equals a target or ends with `.target`) in a
 * LoraLinear and returns the wrapped names in model order. Each module gets its own init and dropout
 * streams, `rng.split('lora:' + name)`, so adding a module never shifts another's numbers.
 */
export function attachLora(container: LinearContainer, config: LoraConfig, rng: Rng): string[] {
  const names = selectTargets(config, container.linearNames());
  const already = names.filter((n) => container.getLinear(n) instanceof LoraLinear);
  if (already.length > 0) {
    throw new CliniloraError('E_ARG', `LoRA is already attached to ${already.length} module(s)`, { field: already[0]!, hint: 'call detachLora first' });
  }
  for (const name of names) {
    const base = container.getLinear(name);
    const layer = new LoraLinear(base, {
      r: loraRank(config, name),
      loraAlpha: loraAlphaFor(config, name),
      loraDropout: config.loraDropout,
      useRslora: config.useRslora,
      initLoraWeights: config.initLoraWeights ?? true,
      rng: rng.split(`lora:${name}`),
      name,
    });
    container.setLinear(name, layer);
  }
  return names;
}

/** The LoRA layers of a container, by module name, in model order. */
export function loraLayers(container: LinearContainer): Array<[string, LoraLinear]> {
  const out: Array<[string, LoraLinear]> = [];
  for (const name of container.linearNames()) {
    const l = container.getLinear(name);
    if (l instanceof LoraLinear) out.push([name, l]);
  }
  return out;
}

/** Removes every adapter, putting the untouched bases back (unmerging first); returns the names. */
export function detachLora(container: LinearContainer): string[] {
  const layers = loraLayers(container);
  for (const [name, l] of layers) container.setLinear(name, l.unload());
  return layers.map(([n]) => n);
}

/** All adapter variables [A, B, A, B, …] in model order. */
export function loraVariables(container: LinearContainer): tf.Variable[] {
  return loraLayers(container).flatMap(([, l]) => l.trainableVariables());
}

/** Training mode (dropout) on every adapter. */
export function setLoraTraining(container: LinearContainer, training: boolean): void {
  for (const [, l] of loraLayers(container)) l.training = training;
}

export function mergeLora(container: LinearContainer, opts: MergeOptions = {}): void {
  for (const [, l] of loraLayers(container)) l.merge(opts);
}

export function unmergeLora(container: LinearContainer, opts: MergeOptions = {}): void {
  for (const [, l] of loraLayers(container)) l.unmerge(opts);
}

/** Merges every adapter into its base and puts the merged bases in place of the wrappers (PEFT `merge_and_unload`). */
export function mergeAndUnloadLora(container: LinearContainer, opts: MergeOptions = {}): string[] {
  const layers = loraLayers(container);
  for (const [name, l] of layers) container.setLinear(name, l.mergeAndUnload(opts));
  return layers.map(([n]) => n);
}

export interface TrainableCount {
  total: number;
  /** module name → r · (in + out) */
  perModule: Map<string, number>;
}

/**
 * Trainable parameters from shapes alone: Σ over targeted modules of r · (in + out).
 * `shapes` maps module names to [out, in]. Unknown targets are the same error as in attachLora.
 */
export function countTrainable(
  config: LoraConfig,
  shapes: ReadonlyMap<string, readonly [number, number]> | Readonly<Record<string, readonly [number, number]>>,
): TrainableCount {
  const entries: Array<[string, readonly [number, number]]> = shapes instanceof Map ? [...shapes.entries()] : Object.entries(shapes);
  const byName = new Map(entries);
  const perModule = new Map<string, number>();
  let total = 0;
  for (const name of selectTargets(config, entries.map(([n]) => n))) {
    const [out, inF] = byName.get(name)!;
    const n = loraRank(config, name) * (inF + out);
    perModule.set(name, n);
    total += n;
  }
  return { total, perModule };
}

/** A copy of every adapter's A and B, keyed by module name. */
export function loraStateDict(container: LinearContainer): Map<string, LoraTensors> {
  const out = new Map<string, LoraTensors>();
  for (const [name, l] of loraLayers(container)) {
    out.set(name, {
      loraA: new Float32Array(l.loraA.dataSync()),
      shapeA: [l.r, l.inFeatures],
      loraB: new Float32Array(l.loraB.dataSync()),
      shapeB: [l.outFeatures, l.r],
    });
  }
  return out;
}

/**
 * Loads A and B into the attached adapters. Every problem — a module with an adapter but no weights, weights
 * for a module without an adapter, a shape or length that differs — is collected into ONE error that
 * names each module with expected versus found; nothing is loaded unless all of it fits.
 */
export function loadLoraStateDict(container: LinearContainer, weights: ReadonlyMap<string, LoraTensors>, opts: { file?: string } = {}): void {
  const layers = new Map(loraLayers(container));
  const problems: string[] = [];
  const fmt = (s: readonly number[]): string => `[${s.join(', ')}]`;
  for (const [name, l] of layers) {
    const t = weights.get(name);
    if (t === undefined) {
      problems.push(`${name}: missing (expected lora_A [${l.r}, ${l.inFeatures}], lora_B [${l.outFeatures}, ${l.r}])`);
      continue;
    }
    const wantA: [number, number] = [l.r, l.inFeatures];
    const wantB: [number, number] = [l.outFeatures, l.r];
    if (t.shapeA[0] !== wantA[0] || t.shapeA[1] !== wantA[1]) problems.push(`${name}.lora_A: expected ${fmt(wantA)}, found ${fmt(t.shapeA)}`);
    else if (t.loraA.length !== wantA[0] * wantA[1]) problems.push(`${name}.lora_A: expected ${wantA[0] * wantA[1]} values, found ${t.loraA.length}`);
    if (t.shapeB[0] !== wantB[0] || t.shapeB[1] !== wantB[1]) problems.push(`${name}.lora_B: expected ${fmt(wantB)}, found ${fmt(t.shapeB)}`);
    else if (t.loraB.length !== wantB[0] * wantB[1]) problems.push(`${name}.lora_B: expected ${wantB[0] * wantB[1]} values, found ${t.loraB.length}`);
  }
  for (const name of weights.keys()) if (!layers.has(name)) problems.push(`${name}: unexpected (no LoRA adapter on that module)`);
  if (problems.length > 0) {
    throw new CliniloraError('E_SHAPE', `adapter weights do not fit the model (${problems.length} problem(s)):\n  ${problems.join('\n  ')}`, {
      ...(opts.file !== undefined ? { file: opts.file } : {}),
      field: 'lora weights',
      hint: 'the adapter was trained with another r, target_modules or base model',
    });
  }
  for (const [name, l] of layers) {
    const t = weights.get(name)!;
    l.setLoraWeights(t.loraA, t.loraB);
  }
}

/** The container's linear shapes [out, in] by module name (for countTrainable and reports). */
export function linearShapes(container: LinearContainer): Map<string, [number, number]> {
  const out = new Map<string, [number, number]>();
  for (const name of container.linearNames()) {
    const l: Linear = container.getLinear(name);
    out.set(name, [l.outFeatures, l.inFeatures]);
  }
  return out;
}
