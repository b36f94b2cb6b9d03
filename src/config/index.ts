/** The experiment config: typed defaults, YAML files, `--set` overrides, hashing. */
export { CONFIG_SPEC, CONFIG_TASKS, defaultConfig, type CliniloraConfig, type ConfigTask } from './defaults.ts';
export { GENERATION_PRESETS, GENERATION_PRESET_NAMES, type GenerationPresetName, type GenerationSettings } from './presets.ts';
export { configHash, configsDir, defineConfig, listConfigs, loadConfig, parseSetItem, validateConfig, type LoadConfigOptions, type LoadedConfig } from './load.ts';
export { leafPaths, type DeepPartial } from './spec.ts';
