// src/data: a dataset file → examples → token ids + loss masks → (B, T) batches. Runs in a browser Worker and in
// Node alike (Blob in, plain data out; no node: imports).
//
//   const dataset = await readDataset(blob, 'train.jsonl');            // Blob/File (Node: fs.openAsBlob)
//   const set = buildExamples(dataset, tokenizer, { maxSeqLen: 512 });  // TokenizedSet
//   const { train, heldOut } = splitTrainHeldOut(set.examples, { heldOut: 0.1, seed: 0 });
//   const batches = batchIterator(train, { batchSize: 4, padTokenId: set.padTokenId, seed: 0 });
//   const batch = batches.next();                                       // { B, T, inputIds (B,T) Int32Array, lossMask (B,T) }
//   const preview = previewDataset(set, tokenizer);                     // for the UI
//   dataset.multipleChoice                                              // items to score by log-likelihood
//
// readDataset(blob, fileName, { format?, columns?, multipleChoiceSchema? }) → Dataset
//   Files: .json (an array; an object holding one array; an object of objects keyed by id, e.g. PubMedQA
//   ori_pqal.json), .jsonl/.ndjson, .csv/.tsv (header row), .parquet (hyparquet; snappy or uncompressed).
//   A .json that is really JSON Lines is read as such; a file without a known extension is sniffed.
//   Formats, detected from the columns (or set, with a column mapping the person chooses; see formats.ts):
//     instruction        instruction / input / output  → the standard Alpaca prompt; target = output
//     prompt-completion  prompt/completion, prompt/response, query/response, question/answer, context/continuation,
//                        input/output, source/target   → target = completion
//     chat               messages (role/content; ShareGPT from/value too) → the tokenizer's chat_template, or the
//                        plain fallback "User: …\nAssistant: …</s>\n"; loss on the assistant turns
//     text               text → loss on every token
//     multiple-choice    ARC/PIQA/HellaSwag (llm-foundry query/choices/gold), WinoGrande (context_options or
//                        sentence/option1/option2), HellaSwag (rowanz ctx/endings/label), MedMCQA
//                        (question/options/answer), PubMedQA (QUESTION/CONTEXTS/final_decision), classification
//                        (sentence/text + label: financial sentiment). Each row trains as prompt = the question as
//                        lm-evaluation-harness formats it, target = the correct continuation, and keeps a
//                        MultipleChoiceItem (context, choices, gold, per-choice scoring requests; WinoGrande partial).
//     pretokenized       input_ids (+ loss_mask, or labels with -100)
//   Row locations: Dataset.lineKind says how `line` reads: 'line' = 1-based text line (JSONL, CSV), 'element' =
//   0-based array element / entry index (JSON), 'row' = 0-based row (Parquet); RejectedRow.where says it in words.
//   Every unusable row is in Dataset.rejected with its reason; a file with no usable row, no fitting format or a
//   missing mapped column throws GradPruneError('dataset') naming the file and the columns found vs expected.
//
// buildExamples(dataset, tokenizer, { maxSeqLen, loss?: 'target' | 'all', appendEos? }) → TokenizedSet
//   Prompt and target are tokenized separately and concatenated; BOS as add_special_tokens does; EOS appended to
//   targets; lossMask[t] = 1 where token t is a target (position t's logits train on token t+1 iff lossMask[t+1]);
//   truncation cuts the prompt from the left, then the target from the right (counted in stats). See tokenize.ts.
// tokenizePair(new SegmentEncoder(tokenizer), context, continuation) → the same tokenization for one scoring request.
// splitTrainHeldOut(items, { heldOut: fraction | count, seed }) → { train, heldOut } (seeded, file order kept).
// batchIterator(examples, { batchSize, padTokenId, seed?, shuffle?, seqLen? }) → { next(): Batch } (endless,
//   epochs reshuffled with the seed; shuffle false = file order B at a time). evalBatches(...) → each row once.
// previewDataset(set, tokenizer, { rows?, bins? }) → first rows token by token (target flag), stats, histogram, rejects.

export { readDataset, summariseReasons, MAX_CLASSIFICATION_LABELS } from './dataset';
export { readRecords, fileKindOf, type SourceRecord, type SourceRecords, type FileKind } from './read';
export { detectFormat, alpacaPrompt, requiredRoles, DATASET_FORMATS, EXPECTED_COLUMNS } from './formats';
export { buildExamples, rowWhere, tokenizePair, SegmentEncoder, plainChatSegments, templateChatSegments, type BuildOptions, type Segment, type TokenizedPair } from './tokenize';
export { splitTrainHeldOut, shuffled, type SplitOptions } from './split';
export { batchIterator, batchOfRows, evalBatches, makeBatch, sliceRows, type BatchIterator, type BatchIteratorOptions, type BatchShape } from './batch';
export { previewDataset, tokenTexts, lengthHistogram, type DatasetPreview, type PreviewRow, type PreviewToken, type LengthHistogram } from './preview';
export type {
  Batch,
  TokenBatch,
  ColumnMapping,
  Dataset,
  DatasetFormat,
  Example,
  LineKind,
  MultipleChoiceItem,
  MultipleChoiceSchema,
  ReadOptions,
  RejectedRow,
  TokenizeStats,
  TokenizedExample,
  TokenizedSet,
} from './types';
