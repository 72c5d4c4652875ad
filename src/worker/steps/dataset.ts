// Step 2: a dataset file read, tokenized for the model, split into training and held-out examples, previewed.

import { buildExamples, previewDataset, readDataset, splitTrainHeldOut, summariseReasons, type TokenizedExample } from '../../data';
import { GradPruneError } from '../../errors';
import { sha256Hex } from '../../model/fingerprint';
import type { DatasetInfo, RequestOf, ResultBody } from '../protocol';
import type { DatasetState, StepContext } from '../session';

export async function loadDataset(ctx: StepContext, req: Pick<RequestOf<'loadDataset'>, 'file' | 'fileName' | 'options'>): Promise<ResultBody<'loadDataset'>> {
  const { file, fileName, options } = req;
  const { session } = ctx;
  const tokenizer = session.checkpoint.tokenizer;
  ctx.progress(`Reading ${fileName}`);
  const dataset = await readDataset(file, fileName, {
    format: options.format,
    columns: options.columns,
    multipleChoiceSchema: options.multipleChoiceSchema,
    template: options.template,
    appendEos: options.appendEos,
  });
  ctx.progress(`Tokenizing ${dataset.examples.length} examples`);
  const set = buildExamples(dataset, tokenizer, { maxSeqLen: options.maxSeqLen });
  if (set.examples.length === 0) {
    throw new GradPruneError('dataset', `${fileName}: no example is left after tokenizing (${set.rejected.length} rows rejected): ${summariseReasons(set.rejected)}.`, {
      subject: fileName,
      hint: 'Look at the rejected rows, or choose another format or a longer sequence length.',
    });
  }
  const { train, heldOut } = splitTrainHeldOut(set.examples, { heldOut: options.heldOut, seed: options.seed });
  // A new dataset makes scores, plans and the pruned model stale.
  session.dropAfter('checkpoint');
  const fingerprint = (await sha256Hex(file)).slice(0, 32);
  session.dataset = { file, fileName, dataset, set, train, heldOut, options, fingerprint, trainBySeqLen: new Map() };
  const info: DatasetInfo = {
    fileName,
    bytes: file.size,
    format: dataset.format,
    multipleChoiceSchema: dataset.multipleChoiceSchema,
    detectedFrom: dataset.detectedFrom,
    columns: dataset.columns,
    mapping: dataset.mapping,
    totalRows: dataset.totalRows,
    examples: set.examples.length,
    train: train.length,
    heldOut: heldOut.length,
    heldOutChoiceItems: heldOut.filter((e) => e.mc).length,
    rejectedCount: set.rejected.length,
    rejected: set.rejected.slice(0, 50),
    preview: previewDataset(set, tokenizer, { rows: 5, bins: 20, rejected: 50 }),
    options,
    template: dataset.template,
    templateIsDefault: dataset.templateIsDefault,
    appendEos: set.appendEos,
    fingerprint,
  };
  return { dataset: info };
}

/** The current dataset file read again with other options. */
export async function setFormat(ctx: StepContext, req: RequestOf<'setFormat'>): Promise<ResultBody<'setFormat'>> {
  const data = ctx.session.needDataset();
  return loadDataset(ctx, { file: data.file, fileName: data.fileName, options: req.options });
}

/** The training split tokenized for rows of seqLen tokens (the engine holds rows of that length). */
export function trainSplitFor(ctx: StepContext, data: DatasetState, seqLen: number): TokenizedExample[] {
  if (seqLen === data.set.maxSeqLen) return data.train;
  let train = data.trainBySeqLen.get(seqLen);
  if (!train) {
    const set = buildExamples(data.dataset, ctx.session.checkpoint.tokenizer, { maxSeqLen: seqLen });
    train = splitTrainHeldOut(set.examples, { heldOut: data.options.heldOut, seed: data.options.seed }).train;
    data.trainBySeqLen.set(seqLen, train);
  }
  return train;
}

/** The longest row of a split, in tokens (at least 2: a row needs a next token to predict); rows never need to be longer. */
export const rowLength = (examples: readonly TokenizedExample[]): number => Math.max(2, examples.reduce((m, e) => Math.max(m, e.inputIds.length), 0));
