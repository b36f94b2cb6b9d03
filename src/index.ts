/**
 * Public API of clinilora. An explicit export list: what is not here is internal.
 * Task-specific helpers live in namespaces (`auditor`, `heart`, `alpacare`) so their names never clash.
 */

// Errors, randomness, files
export { CliniloraError, type ErrorCode, type ErrorDetails } from './errors.ts';
export { Rng, type RngState } from './util/random.ts';
export { writeFileAtomic, writeDirAtomic } from './util/atomic.ts';

// Backend
export { tf } from './backend/tf.ts';
export { initBackend, currentBackend, BACKEND_NAMES, type BackendName, type BackendInfo, type BackendOptions, type BackendAttempt } from './backend/index.ts';
export { measureMatmul, type MatmulMeasure, type MatmulOptions } from './backend/matmul-probe.ts';
export { readCpuInfo, peakEstimate, type CpuInfo, type PeakEstimate } from './backend/sysinfo.ts';
export { collectDoctorReport, type DoctorReport } from './cli/doctor.ts';
export { nativeStatus, setNativeEnabled, type NativeStatus } from './backend/native.ts';

// Kernels: linear layers, quantization
export type { Linear } from './kernels/linear.ts';
export { FloatLinear } from './kernels/float-linear.ts';
export { quantizeLinear, type QuantKind, type QuantizeLinearOptions } from './kernels/quant-linear.ts';
export { NF4Linear } from './kernels/nf4-linear.ts';
export { Int8Linear } from './kernels/int8-linear.ts';
export { NF4_CODES, quantizeNF4, dequantizeNF4, type NF4Weight } from './kernels/nf4.ts';
export { quantizeInt8, dequantizeInt8, type Int8Weight } from './kernels/int8.ts';
export { nf4ToBnbRecord, nf4FromBnbRecord, int8ToBnbRecord, int8FromBnbRecord } from './kernels/quant-bnb-format.ts';
export { Embedding, type EmbeddingStorage } from './kernels/embedding.ts';
export { linearCrossEntropy } from './kernels/cross-entropy.ts';

// Model
export { configFromHf, configToHf, getPreset, presetNames, headDim, type PhiConfig } from './model/config.ts';
export { Phi3ForCausalLM, numParameters, type WeightSource, type WeightData, type Phi3Options, type ForwardOptions } from './model/phi3.ts';
export { initPhi3, randomWeights } from './model/init.ts';
export {
  loadPhi3,
  savePhi3,
  buildPhi3,
  phi3Tensors,
  type LoadPhi3Options,
  type SavePhi3Options,
  type BuildPhi3Options,
} from './model/checkpoint.ts';
export { exportGguf, type ExportGgufOptions, type ExportGgufResult } from './model/export.ts';
export { KVCache } from './model/kv-cache.ts';
export type { LossOptions } from './model/loss.ts';
export { generate, generateGreedy, GENERATION_PRESETS, type GreedyResult, type GenerateOptions, type GenerateResult, type GenerationPresetName } from './model/generate.ts';
export { processLogits, nextToken, type SamplingOptions } from './model/sampling.ts';
export type { TokenBatch } from './model/batch.ts';
export type { LinearContainer, LinearFactory } from './model/linear-container.ts';

// LoRA (PEFT names)
export { defineLoraConfig, loraScaling, type LoraConfig } from './model/lora/config.ts';
export { LoraLinear } from './model/lora/layer.ts';
export {
  attachLora,
  detachLora,
  loraLayers,
  loraVariables,
  setLoraTraining,
  mergeLora,
  unmergeLora,
  mergeAndUnloadLora,
  countTrainable,
  loraStateDict,
  loadLoraStateDict,
  type LoraTensors,
  type TrainableCount,
} from './model/lora/model.ts';
export { saveLoraAdapter, loadLoraAdapter, toPeftConfig, fromPeftConfig } from './model/lora/peft-files.ts';

// File formats
export {
  type DType,
  type RawTensor,
  DTYPE_BYTES,
  numel,
  byteSize,
  toFloat32,
  fromFloat32,
  rawFromTyped,
  rawFromHalfBits,
  f32ToF16Bits,
  f16BitsToF32,
  f32ToBf16Bits,
} from './io/tensor.ts';
export { openSafetensors, writeSafetensors, type SafetensorsFile, type SafetensorsInfo, type LazyTensor, type TensorSource } from './io/safetensors.ts';
export { openCheckpoint, writeCheckpoint, type HfCheckpoint, type CheckpointTensorInfo, type WriteCheckpointOptions } from './io/hf-checkpoint.ts';
export { saveAdapterFiles, loadAdapterFiles, defaultPeftLoraConfig, rankFor, type PeftLoraConfig, type LoraPair } from './io/peft.ts';
export {
  openGguf,
  writeGguf,
  GgufStreamWriter,
  quantizeQ8_0,
  quantizeQ4_0,
  dequantize,
  type GgufFile,
  type GgufValue,
  type GgufScalarType,
  type GgmlType,
  type GgufTensorInfo,
  type GgufTensorSpec,
} from './io/gguf.ts';
export { exportPhi3Gguf, loadTokenizerMetadata, type Phi3GgufExport, type Phi3GgufFileType, type FloatTensor } from './io/gguf-phi3.ts';

// Tokenizer
export {
  Phi3Tokenizer,
  defaultTokenizerPath,
  applyChatTemplate,
  toTokenizerJson,
  toTokenizerConfig,
  writeTokenizerFiles,
  PHI3_TOKEN_IDS,
  PHI3_BOS_ID,
  PHI3_EOS_ID,
  PHI3_PAD_ID,
  PHI3_STOP_TOKEN_IDS,
  PHI3_CHAT_TEMPLATE_JINJA,
  type EncodeOptions,
  type DecodeOptions,
  type ChatMessage,
  type ChatRole,
  type ChatTemplateOptions,
  type ChatEncodeOptions,
  type ChatSpan,
} from './tokenizer/index.ts';

// Data: the three tasks, splits, manifests, DataFrame views
export { makeSample, sampleId, type Sample, type SplitName, type TaskName } from './data/sample.ts';
export { splitSamples, findLeakage, assertNoLeakage, type SplitRatios, type Splits, type LeakageReport } from './data/split.ts';
export { buildManifest, verifyManifest, writeDataset, loadDataset, type SplitManifest, type Dataset } from './data/manifest.ts';
export {
  TASKS,
  buildDataset,
  buildAndWriteDataset,
  loadTaskDataset,
  defaultDatasetDir,
  cliniloraHome,
  phi3TokenCounter,
  chatTokenLength,
  chatTokenCounts,
  type Task,
  type BuildDatasetOptions,
  type TaskDataset,
} from './data/index.ts';
export { samplesFrame, labelCounts, describeLengths, lengthHistogram, type SampleRow, type LengthHistogram } from './data/frame.ts';
export { loadInstructJsonl } from './data/instruct.ts';
export * as auditor from './data/auditor/index.ts';
export * as heart from './data/heart/index.ts';
export * as alpacare from './data/alpacare/index.ts';

// Safety and evaluation
export * as safety from './safety/index.ts';
export * as evaluation from './eval/index.ts';
export { fitLogistic, predictProba, rocAuc, bootstrapAuc } from './eval/logistic.ts';

// Configs and run records
export * from './config/index.ts';
export * from './tracker/index.ts';
export * as report from './report/index.ts';
export * as review from './review/index.ts';
export * as notebook from './notebook/index.ts';
export { reproduceRun, type ReproduceOptions, type ReproduceResult } from './pipeline/reproduce.ts';
export {
  findRun,
  findRuns,
  resolveRunId,
  summarizeRun,
  diffRuns,
  diffRecords,
  configDiff,
  formatDiff,
  type RunFilter,
  type RunSummary,
  type RunDiff,
} from './tracker/compare.ts';
export { removeRuns, tagRun } from './tracker/manage.ts';
export { exportRuns, runRows, runsFrame, toCsv, type RunRow, type ExportOptions } from './tracker/export.ts';

// Training
export {
  encodeSample,
  makeBatches,
  planBatches,
  collate,
  AdamW,
  clipGradNorm,
  lrAt,
  warmupSteps,
  train,
  resume,
  answerLoss,
  namedLoraVariables,
  configHash as checkpointConfigHash,
  latestCheckpoint,
  readCheckpointState,
  progressCallbacks,
  CHECKPOINT_FORMAT,
  type TrainConfig,
  type TrainOptions,
  type TrainCallbacks,
  type TrainSummary,
  type StepInfo,
  type EvalInfo,
  type Batch,
  type EncodedSample,
  type NamedVariable,
  type LossFn,
  type TrainState,
} from './train/index.ts';
export * from './pipeline/index.ts';

// The shipped base: pretraining corpus and script
export { pretrain, sequenceLoss, type PretrainOptions, type PretrainResult } from './pretrain/train.ts';
export { buildCorpus, packCorpus, CORPUS_PARTS, type CorpusConfig, type CorpusDoc, type CorpusPart, type Corpus, type PackedCorpus } from './pretrain/corpus.ts';
export { loadPretrainConfig, type PretrainConfig } from './pretrain/config.ts';
export { saveBase, type SaveBaseOptions } from './pretrain/ship.ts';
