// What several commands need first: a model folder opened as a Checkpoint, the --data file read and tokenized,
// and the WebGPU adapter when there is one.

import { stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildExamples, readDataset, summariseReasons, type Dataset, type DatasetFormat, type ReadOptions, type TokenizedSet } from '../data';
import { escapeTemplate } from '../data/template';
import { GradPruneError } from '../errors';
import { requestGpu, type AdapterSummary } from '../gpu/device';
import { openCheckpoint, type Checkpoint } from '../model/checkpoint';
import { openFile, openFolder } from '../model/node-files';
import type { TextTokenizer } from '../model/tokenizer';
import type { CliIO } from './command';

/** The demo model and dataset the studio embeds (public/demo in this package). */
export const EMBEDDED_DEMO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../public/demo');

/** A Hugging Face model folder on disk, opened and validated; the folder's name names the model. */
export async function openModelFolder(dir: string): Promise<Checkpoint> {
  return openCheckpoint(await openFolder(dir), path.basename(path.resolve(dir)));
}

/**
 * The adapter's summary, or why there is none. The device is released straight away: callers that only
 * describe the adapter must not keep a GPU device (or Dawn's instance) busy.
 */
export async function probeAdapter(): Promise<{ adapter: AdapterSummary | null; reason: string | null }> {
  try {
    const gpu = await requestGpu();
    gpu.device.destroy();
    return { adapter: gpu.adapter, reason: null };
  } catch (e) {
    return { adapter: null, reason: e instanceof GradPruneError ? e.message : `WebGPU could not start (${(e as Error).message}).` };
  }
}

/** Fails early, before any slow work, when the `--data` file cannot be read. */
export async function checkDataFile(dataFile: string): Promise<void> {
  await stat(dataFile).catch((e: NodeJS.ErrnoException) => {
    throw new GradPruneError('file', `Cannot read ${dataFile} (${e.code ?? e.message}).`, { subject: dataFile, hint: 'Give the path of the dataset file with --data.' });
  });
}

/** The `--data` file read and tokenized for training, with one summary line on stderr; throws when no row is usable. */
export async function readTrainingData(
  dataFile: string,
  tokenizer: TextTokenizer,
  opts: { format?: DatasetFormat; maxSeqLen: number } & Pick<ReadOptions, 'template' | 'appendEos'>,
  io: CliIO,
): Promise<{ blob: Blob; fileName: string; dataset: Dataset; set: TokenizedSet }> {
  const blob = await openFile(dataFile);
  const fileName = path.basename(dataFile);
  const dataset = await readDataset(blob, fileName, { format: opts.format, template: opts.template, appendEos: opts.appendEos });
  const set = buildExamples(dataset, tokenizer, { maxSeqLen: opts.maxSeqLen });
  if (set.examples.length === 0) {
    throw new GradPruneError('dataset', `${fileName}: no row could be tokenized (${set.rejected.length} rejected): ${summariseReasons(set.rejected)}.`, { subject: fileName });
  }
  io.err(dataSettingsLine(dataset));
  io.err(
    `data  ${fileName}: ${set.examples.length} examples (${dataset.format}, ${dataset.detectedFrom})` +
      (set.rejected.length ? `, ${set.rejected.length} rows skipped (${summariseReasons(set.rejected)})` : '') +
      (set.stats.truncatedPrompt + set.stats.truncatedTarget
        ? `; cut to ${set.maxSeqLen} tokens: ${set.stats.truncatedPrompt} prompts, ${set.stats.truncatedTarget} targets`
        : ''),
  );
  return { blob, fileName, dataset, set };
}

/** What the rows were read with: the template in force (as --template takes it) and the EOS setting. */
export function dataSettingsLine(dataset: Dataset): string {
  const template = dataset.template === null ? 'fixed layout' : `template "${escapeTemplate(dataset.template)}"${dataset.templateIsDefault ? ' (default; --template to change)' : ''}`;
  return `data  ${template}; EOS ${dataset.appendEos ? 'appended to every target (--no-eos to leave it out)' : 'not appended (--eos to append it)'}`;
}
