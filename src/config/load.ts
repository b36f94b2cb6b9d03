/**
 * Loading a config: defaults < generation preset < YAML file < `--set key=value` overrides (nanoGPT's
 * configurator, with types checked). Every problem — unknown key, wrong type, bad YAML — is collected
 * and reported at once in a CliniloraError naming the file, the line, the key path and expected vs found.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, extname, join, resolve } from 'node:path';
import { isMap, isNode, isScalar, LineCounter, parse as parseYaml, parseDocument, type Document, type YAMLMap } from 'yaml';
import { packageRoot } from '../data/index.ts';
import { canonicalJson } from '../data/manifest.ts';
import { sha256Hex } from '../data/sample.ts';
import { CliniloraError, type ErrorDetails } from '../errors.ts';
import { CONFIG_SPEC, defaultConfig, type CliniloraConfig } from './defaults.ts';
import { GENERATION_PRESETS, type GenerationPresetName } from './presets.ts';
import { describeFound, isLeaf, type DeepPartial, type Leaf, type Spec } from './spec.ts';
import { editDistance } from '../util/text.ts';

/** One problem found while loading; all of them go into one error. */
interface Problem extends ErrorDetails {
  message: string;
}

/** One leaf set by a layer, in order. */
interface Assignment {
  path: string[];
  value: unknown;
}

export interface LoadConfigOptions {
  /** `key.path=value` overrides; values are parsed as YAML scalars (`2e-4`, `true`, `[a, b]`). */
  set?: readonly string[];
}

export interface LoadedConfig {
  /** The resolved config: a plain JSON object. */
  config: CliniloraConfig;
  /** sha256 of its canonical JSON (configHash). */
  hash: string;
  /** Absolute path of the file read. */
  file: string;
  /** The file's name without extension ('auditor-nano'): a default run name. */
  name: string;
  /** The overrides applied, as given. */
  set: string[];
}

/** Shipped configs: `<package>/experiments/configs/`. */
export function configsDir(): string {
  return join(packageRoot(), 'experiments', 'configs');
}

/** Names of the shipped configs (without .yaml), sorted. */
export function listConfigs(dir = configsDir()): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith('.yaml') || f.endsWith('.yml'))
    .map((f) => f.replace(/\.ya?ml$/, ''))
    .sort();
}

/**
 * Reads a YAML config and resolves it. `path` is a file, or the bare name of a shipped config
 * ('auditor-nano' → experiments/configs/auditor-nano.yaml).
 */
export function loadConfig(path: string, opts: LoadConfigOptions = {}): LoadedConfig {
  const file = findConfigFile(path);
  const text = readFileSync(file, 'utf8');
  const problems: Problem[] = [];
  const fileLayer = yamlAssignments(text, file, problems);
  const setLayer = setAssignments(opts.set ?? [], problems);
  raise(problems, file);
  const config = resolveAssignments([...fileLayer, ...setLayer]);
  return { config, hash: configHash(config), file, name: basename(file, extname(file)), set: [...(opts.set ?? [])] };
}

/** A resolved, validated config from a partial object (code and notebooks): defaults < preset < init. */
export function defineConfig(init: DeepPartial<CliniloraConfig> = {}, overrides: readonly string[] = []): CliniloraConfig {
  const problems: Problem[] = [];
  const layer = objectAssignments(init, CONFIG_SPEC, [], 'defineConfig', problems);
  const setLayer = setAssignments(overrides, problems);
  raise(problems, 'defineConfig');
  return resolveAssignments([...layer, ...setLayer]);
}

/**
 * Checks that `value` is a complete resolved config (e.g. one read back from a run record): every key
 * present, none unknown, every type right.
 */
export function validateConfig(value: unknown, source = 'config'): CliniloraConfig {
  const problems: Problem[] = [];
  checkComplete(value, CONFIG_SPEC, [], source, problems);
  raise(problems, source);
  return value as CliniloraConfig;
}

/** sha256 (hex) of the config's canonical JSON: independent of key order. */
export function configHash(config: CliniloraConfig | Record<string, unknown>): string {
  return sha256Hex(canonicalJson(config));
}

/** Parses one `--set` item into a key path and a YAML-parsed value. */
export function parseSetItem(item: string): { path: string[]; value: unknown } {
  const problems: Problem[] = [];
  const out = parseSet(item, problems);
  raise(problems, '--set');
  return out as { path: string[]; value: unknown };
}

// ---------------------------------------------------------------------------------------------------

function findConfigFile(path: string): string {
  const candidates = [resolve(path)];
  if (!path.includes('/') && !path.includes('\\') && extname(path) === '') candidates.push(join(configsDir(), `${path}.yaml`));
  for (const c of candidates) {
    if (existsSync(c)) {
      if (statSync(c).isDirectory()) {
        throw new CliniloraError('E_CONFIG', 'config path is a directory, not a YAML file', { file: c, expected: 'a .yaml file', found: 'a directory' });
      }
      return c;
    }
  }
  const shipped = listConfigs();
  throw new CliniloraError('E_MISSING', 'config file not found', {
    file: resolve(path),
    hint: shipped.length > 0 ? `shipped configs (by name or path): ${shipped.join(', ')}` : 'give the path to a .yaml config',
  });
}

function yamlAssignments(text: string, file: string, problems: Problem[]): Assignment[] {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, uniqueKeys: true });
  for (const e of doc.errors) {
    problems.push({ message: `invalid YAML: ${e.message.split('\n')[0] ?? e.code}`, file, line: e.linePos?.[0].line });
  }
  if (doc.errors.length > 0) return [];
  const root = doc.contents;
  if (root === null || (isScalar(root) && root.value === null)) return []; // empty file: defaults only
  if (!isMap(root)) {
    problems.push({ message: 'a config must be a mapping of keys', file, line: 1, expected: 'a mapping', found: describeFound(root.toJS(doc)) });
    return [];
  }
  const out: Assignment[] = [];
  walkYamlMap(doc, root, CONFIG_SPEC, [], file, lineCounter, problems, out);
  return out;
}

function walkYamlMap(doc: Document, map: YAMLMap, spec: Spec, path: string[], file: string, lc: LineCounter, problems: Problem[], out: Assignment[]): void {
  for (const pair of map.items) {
    const keyNode = pair.key;
    const line = isNode(keyNode) && keyNode.range ? lc.linePos(keyNode.range[0]).line : undefined;
    const key = isScalar(keyNode) ? String(keyNode.value) : String(keyNode);
    const p = [...path, key];
    const entry = Object.hasOwn(spec, key) ? spec[key] : undefined;
    if (entry === undefined) {
      problems.push(unknownKey(p, spec, { file, line }));
      continue;
    }
    const valueNode = pair.value;
    if (isLeaf(entry)) {
      const value: unknown = isNode(valueNode) ? valueNode.toJS(doc) : null;
      const vLine = isNode(valueNode) && valueNode.range ? lc.linePos(valueNode.range[0]).line : line;
      if (checkLeaf(entry, value, p, { file, line: vLine }, problems)) out.push({ path: p, value });
    } else if (isMap(valueNode)) {
      walkYamlMap(doc, valueNode, entry, p, file, lc, problems, out);
    } else if (valueNode === null || (isScalar(valueNode) && valueNode.value === null)) {
      // `lora:` with nothing under it: no overrides in that section
    } else {
      const value: unknown = isNode(valueNode) ? valueNode.toJS(doc) : valueNode;
      problems.push({ message: 'wrong type', file, line, field: p.join('.'), expected: `a mapping of ${Object.keys(entry).join(', ')}`, found: describeFound(value) });
    }
  }
}

function setAssignments(items: readonly string[], problems: Problem[]): Assignment[] {
  const out: Assignment[] = [];
  for (const item of items) {
    const parsed = parseSet(item, problems);
    if (parsed === undefined) continue;
    const where = { file: `--set ${item}` };
    let spec: Spec = CONFIG_SPEC;
    let entry: Leaf<unknown> | Spec | undefined;
    let ok = true;
    for (let i = 0; i < parsed.path.length; i++) {
      const seg = parsed.path[i] as string;
      entry = Object.hasOwn(spec, seg) ? spec[seg] : undefined;
      if (entry === undefined || (isLeaf(entry) && i < parsed.path.length - 1)) {
        problems.push(unknownKey(parsed.path.slice(0, entry === undefined ? i + 1 : i + 2), entry === undefined ? spec : {}, where));
        ok = false;
        break;
      }
      if (!isLeaf(entry)) spec = entry;
    }
    if (!ok || entry === undefined) continue;
    if (isLeaf(entry)) {
      if (checkLeaf(entry, parsed.value, parsed.path, where, problems)) out.push({ path: parsed.path, value: parsed.value });
    } else {
      out.push(...objectAssignments(parsed.value, entry, parsed.path, where.file, problems));
    }
  }
  return out;
}

function parseSet(item: string, problems: Problem[]): { path: string[]; value: unknown } | undefined {
  const eq = item.indexOf('=');
  const key = eq < 0 ? '' : item.slice(0, eq).trim();
  if (eq < 0 || key === '' || key.split('.').some((s) => s === '')) {
    problems.push({ message: 'an override must look like key.path=value', file: '--set', expected: 'e.g. training.lr=2e-4', found: JSON.stringify(item) });
    return undefined;
  }
  const raw = item.slice(eq + 1);
  try {
    return { path: key.split('.'), value: parseYaml(raw) as unknown };
  } catch (e) {
    problems.push({ message: `value is not valid YAML: ${(e as Error).message.split('\n')[0] ?? ''}`, file: `--set ${item}`, field: key, found: JSON.stringify(raw) });
    return undefined;
  }
}

/** Leaf assignments from a plain object checked against `spec`. */
function objectAssignments(value: unknown, spec: Spec, path: string[], source: string, problems: Problem[]): Assignment[] {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    problems.push({ message: 'wrong type', file: source, field: path.join('.') || '(root)', expected: `a mapping of ${Object.keys(spec).join(', ')}`, found: describeFound(value) });
    return [];
  }
  const out: Assignment[] = [];
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    const p = [...path, k];
    const entry = Object.hasOwn(spec, k) ? spec[k] : undefined;
    if (entry === undefined) problems.push(unknownKey(p, spec, { file: source }));
    else if (isLeaf(entry)) {
      if (v !== undefined && checkLeaf(entry, v, p, { file: source }, problems)) out.push({ path: p, value: v });
    } else if (v !== undefined && v !== null) out.push(...objectAssignments(v, entry, p, source, problems));
  }
  return out;
}

function checkComplete(value: unknown, spec: Spec, path: string[], source: string, problems: Problem[]): void {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    problems.push({ message: 'wrong type', file: source, field: path.join('.') || '(root)', expected: 'a mapping', found: describeFound(value) });
    return;
  }
  const o = value as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!Object.hasOwn(spec, k)) problems.push(unknownKey([...path, k], spec, { file: source }));
  for (const [k, entry] of Object.entries(spec)) {
    const p = [...path, k];
    if (!Object.hasOwn(o, k)) problems.push({ message: 'missing key', file: source, field: p.join('.'), expected: isLeaf(entry) ? entry.expected : 'a mapping', found: 'nothing' });
    else if (isLeaf(entry)) checkLeaf(entry, o[k], p, { file: source }, problems);
    else checkComplete(o[k], entry, p, source, problems);
  }
}

function checkLeaf(leaf: Leaf<unknown>, value: unknown, path: string[], where: ErrorDetails, problems: Problem[]): boolean {
  if (leaf.accepts(value)) return true;
  problems.push({ message: 'wrong type', ...where, field: path.join('.'), expected: leaf.expected, found: describeFound(value) });
  return false;
}

function unknownKey(path: string[], spec: Spec, where: ErrorDetails): Problem {
  const key = path[path.length - 1] ?? '';
  const known = Object.keys(spec);
  const close = known.find((k) => editDistance(k.toLowerCase(), key.toLowerCase()) <= 2);
  return {
    message: 'unknown key',
    ...where,
    field: path.join('.'),
    expected: known.length > 0 ? `one of ${known.join(', ')}` : 'no key below a value',
    found: JSON.stringify(key),
    ...(close !== undefined && close !== key ? { hint: `did you mean '${[...path.slice(0, -1), close].join('.')}'?` } : {}),
  };
}

/** defaults, then the chosen generation preset, then each assignment in order. */
function resolveAssignments(layers: Assignment[]): CliniloraConfig {
  const config = defaultConfig();
  let preset: GenerationPresetName = config.eval.preset;
  for (const a of layers) if (a.path.join('.') === 'eval.preset') preset = a.value as GenerationPresetName;
  Object.assign(config.eval, GENERATION_PRESETS[preset], { preset });
  for (const a of layers) {
    let node = config as unknown as Record<string, unknown>;
    for (const seg of a.path.slice(0, -1)) node = node[seg] as Record<string, unknown>;
    node[a.path[a.path.length - 1] as string] = structuredClone(a.value);
  }
  return config;
}

function raise(problems: Problem[], source: string): void {
  if (problems.length === 0) return;
  const [first] = problems as [Problem, ...Problem[]];
  const { message, ...details } = first;
  if (problems.length === 1) throw new CliniloraError('E_CONFIG', message, details);
  const lines = problems.map(({ message: m, ...d }) => `  - ${new CliniloraError('E_CONFIG', m, d).message}`);
  throw new CliniloraError('E_CONFIG', `${problems.length} problems:\n${lines.join('\n')}`, { file: details.file ?? source });
}
