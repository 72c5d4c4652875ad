// `gradprune export <model-dir> --format gguf|onnx [--dtype D] --out <path> [--overwrite]`: a Hugging Face model
// folder (pruned or not) converted for the runtimes people deploy to — GGUF for llama.cpp / Ollama / LM Studio, ONNX
// for transformers.js. One row per format below: what it writes (a file or a folder), the dtypes it offers (the first
// is the default) and the function that writes it. Every format refuses what it cannot express before any work, and
// writes under a temporary name renamed into place when complete (see ../outputs.ts).

import { writeGgufFile, GGUF_DTYPES } from '../../export/gguf/node-file';
import { ONNX_DTYPES, writeOnnxFolder } from '../../export/onnx/node-folder';
import type { OutputKind } from '../../export/node-output';
import type { Checkpoint } from '../../model/checkpoint';
import { stringOption, usageError, type CliIO, type Command } from '../command';
import { openModelFolder } from '../load';
import { checkOutputs, OVERWRITE_OPTION, overwriteOption } from '../outputs';

/** What a format's writer is given: the opened model, where to write (already checked), and how. */
export interface ExportJob {
  ckpt: Checkpoint;
  modelDir: string;
  /** The resolved output path (checked: not over an input, not existing unless overwrite). */
  target: string;
  /** --out as the person typed it, for messages. */
  given: string;
  dtype: string;
  overwrite: boolean;
  io: CliIO;
}

export interface ExportFormat {
  /** One line for --help. */
  summary: string;
  output: OutputKind;
  /** For a file output given as a folder: the file name to suggest. */
  fileName: string;
  /** The --dtype values it takes; the first is the default. */
  dtypes: readonly string[];
  write(job: ExportJob): Promise<void>;
}

export const EXPORT_FORMATS: Record<string, ExportFormat> = {
  gguf: {
    summary: 'one .gguf file for llama.cpp, Ollama, LM Studio (f16, or q8_0 blocks of 32)',
    output: 'file',
    fileName: 'model.gguf',
    dtypes: GGUF_DTYPES,
    write: (job) => writeGgufFile(job),
  },
  onnx: {
    summary: 'a transformers.js folder: config, tokenizer, onnx/model.onnx (fp32) and onnx/model_fp16.onnx',
    output: 'folder',
    fileName: 'onnx-model',
    dtypes: ONNX_DTYPES,
    write: (job) => writeOnnxFolder(job),
  },
};

const FORMAT_NAMES = Object.keys(EXPORT_FORMATS);

export const exportCommand: Command = {
  name: 'export',
  summary: 'Convert a model folder for llama.cpp (GGUF) or transformers.js (ONNX).',
  description:
    'Writes the model (pruned or not) in a runtime\'s own format, streamed tensor by tensor: ' +
    Object.entries(EXPORT_FORMATS)
      .map(([name, f]) => `${name}: ${f.summary} (--dtype ${f.dtypes.join('|')})`)
      .join('; ') +
    '. A model the format cannot express (architecture, tokenizer) is refused with the reason before anything is written.',
  positionals: [{ name: 'model-dir', description: 'a Hugging Face model folder (e.g. the output of `gradprune prune`)' }],
  options: {
    format: { type: 'string', valueName: 'F', description: `the format to write: ${FORMAT_NAMES.join(' | ')}` },
    dtype: { type: 'string', valueName: 'D', description: 'the weights\' storage (per format; gguf: f16 (default) | q8_0; onnx: fp32+fp16 (default) | fp32 | fp16)' },
    out: { type: 'string', short: 'o', valueName: 'PATH', description: 'the file (gguf) or folder (onnx) to write' },
    overwrite: OVERWRITE_OPTION,
  },
  async run({ positionals, options }, io) {
    if (typeof options.format !== 'string') throw usageError(`export needs --format ${FORMAT_NAMES.join('|')}.`, 'format');
    const formatName = stringOption(options, 'format', FORMAT_NAMES[0], FORMAT_NAMES);
    const format = EXPORT_FORMATS[formatName];
    if (typeof options.out !== 'string') throw usageError(`export needs --out <${format.output === 'file' ? 'file' : 'dir'}>: where to write the ${formatName} ${format.output}.`, 'out');
    const dtype = stringOption(options, 'dtype', format.dtypes[0], format.dtypes);
    const modelDir = positionals['model-dir']!;
    const overwrite = overwriteOption(options);
    const ckpt = await openModelFolder(modelDir);
    const [target] = await checkOutputs([{ path: options.out, kind: format.output, fileName: format.fileName }], { sourceFolders: [modelDir], overwrite });
    await format.write({ ckpt, modelDir, target, given: options.out, dtype, overwrite, io });
    return 0;
  },
};
