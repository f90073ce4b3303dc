// The public library API: re-exports only. Everything the CLI does is built from these pieces.

// assemble, mix
export { ASSEMBLE_MODES, type AssembleOptions, assembleStage } from './assemble/index.js';
// generate
export type { ChatMessage, CompletionRequest, CompletionResult, LlmBackend } from './backends/backend.js';
export {
  AUTO_START_CONCURRENCY,
  ConcurrencyController,
  DEFAULT_MAX_CONCURRENCY,
  type LimitHistory,
} from './backends/concurrency-controller.js';
export { discoverModel, type ServedModelInfo } from './backends/discovery.js';
export type { ConcurrencyFigures, EndpointFigures } from './backends/endpoint-control.js';
export { HttpBackend, type HttpBackendOptions } from './backends/http-backend.js';
export { createLocalBackend, LocalBackend } from './backends/local-backend.js';
export { isLocalLlm, resolveLocalModel } from './backends/local-model.js';
export { estimatedTokens, type RateLimits, RatePacer } from './backends/rate-limit.js';
export {
  parseResetDuration,
  type RateLimitState,
  readRateLimitHeaders,
} from './backends/ratelimit-headers.js';
export { type ServerLoad, serverLoadFrom } from './backends/server-load.js';
export { readFrameContentSize, zstdCompressFrame, zstdDecompress } from './codecs/zstd.js';
// whole commands
export { parseRunConfig, type RunConfig, readRunConfigFile, runConfigSchema } from './config.js';
export {
  actualFigures,
  type DatasetFigures,
  type OutputAssumptions,
  type PlanFigures,
  type PlanSettings,
  planRun,
} from './cost-plan.js';
export {
  type BaselinePoint,
  type EffectiveData,
  type EfficiencyFit,
  effectiveData,
  fitEfficiency,
  lossAt,
} from './efficiency.js';
export { parseBaselineCsv, readBaselineCsv } from './efficiency-csv.js';
// core
export * from './errors.js';
export { feedSequences, writeFeed } from './feed.js';
export {
  type BudgetLimits,
  type BudgetStop,
  budgetFor,
  GenerationBudget,
} from './generate/budget.js';
export { generateStage, generationRecord, type LongDocsOptions } from './generate/engine.js';
export { failureBudgetStage } from './generate/failure-budget.js';
export { Journal } from './generate/journal.js';
export {
  BYTE_TOKENIZER,
  inputBudget,
  LONG_DOCS_MODES,
  type LongDocsMode,
  segmentAtLines,
} from './generate/long-docs.js';
export { BUILT_IN_RECIPES, resolveRecipe } from './generate/recipes/index.js';
// Hub, ranks
export { createHubClient, hubOptionsFromEnv } from './hub/client.js';
export { pullHubFiles } from './hub/pull.js';
export { HubPusher } from './hub/push.js';
export { expandHubInput, hubShard } from './hub/shard.js';
export type { TokenizerDownloadOptions } from './hub/tokenizer-download.js';
export { parseHubUrl } from './hub/url.js';
export { inspectDataset } from './inspect.js';
export { mergeRankIndexes, rankDirName } from './merge.js';
export { mixedOrder, mixtureSpec, planMix, streamOrder } from './mix.js';
export { newPackStats, type PackOptions, type PackStats, packStage, type TailMode } from './pack.js';
export { runGenerate } from './pipeline/generate.js';
export { type PackConfig, type PackSummary, runPack } from './pipeline/pack.js';
export { newRunProgress, type RunOptions, type RunSummary, runMegadocs } from './pipeline/run.js';
export { type AnyStep, type Step, throughSteps } from './pipeline/steps.js';
export {
  loadTransformModule,
  TRANSFORM_POINTS,
  type Transform,
  type TransformIdentity,
  type TransformItems,
  type TransformModule,
  type TransformPoint,
  type TransformRecord,
  type Transforms,
} from './pipeline/transforms.js';
export { assignShards, planShards } from './plan.js';
export { resolveRank } from './ranks.js';
export { REPORT_FILE, type ReportOptions, type WrittenReport, writeReport } from './report/index.js';
export { hashConfig, RunDir, type RunManifest, type RunStatus } from './rundir.js';
export { SequenceSpillReader, SequenceSpillWriter } from './sequence-spill.js';
export { keyedPermutation, shuffleWindowStage } from './shuffle.js';
export { JsonlWriter, jsonlSink } from './sinks/jsonl.js';
// sinks and readers
export { MdsWriter, mdsSink, parseCompression, type SinkSummary } from './sinks/mds.js';
export { iterateMdsSamples, readMdsIndex, readMdsShard } from './sinks/mds-reader.js';
export { MegatronWriter, megatronSink } from './sinks/megatron.js';
export { megatronDtype, parseMegatronIndex } from './sinks/megatron-format.js';
export { MemmapWriter, memmapDtype, memmapSink } from './sinks/memmap.js';
export { DocumentSpans, recordSpans } from './sinks/memmap-spans.js';
export { TOKEN_DTYPES, type TokenDtype, tokenDtype } from './sinks/token-dtype.js';
// source
export { type ExpandOptions, expandInputs } from './sources/inputs.js';
export { localShard } from './sources/local.js';
export {
  DEFAULT_RECORD_OPTIONS,
  emptySourceStats,
  iterateDocs,
  type ReadOptions,
  readDocs,
} from './sources/read.js';
export type { RecordOptions, ShardRef, SourceStats } from './sources/types.js';
export {
  drain,
  fromAsyncIterable,
  fromNodeReadable,
  mapOrdered,
  mapUnordered,
  pipe,
  toAsyncIterable,
  toNodeReadable,
} from './stream.js';
// tokenize, pack
export { type DocumentTokens, documentTokens } from './tokenize/document-tokens.js';
export {
  checkTokenizerSpec,
  DEFAULT_TOKENIZER,
  type Encoder,
  loadEncoder,
  prepareTokenizer,
  TOKENIZER_NAMES,
  type TokenizerFacts,
  tokenizerFacts,
} from './tokenize/encoders.js';
export { TokenizerPool } from './tokenize/pool.js';
export { type TokenizeOptions, tokenizeStage } from './tokenize/stage.js';
export type * from './types.js';
export { dependencyVersions, VERSION } from './version.js';
