// `gradprune inspect <model-dir> [--json]`: the model summary, parameter counts, weight memory and adapter fit.

import { checkFit, formatSummary, summarizeModel } from '../../model/summary';
import { flag, type Command } from '../command';
import { openModelFolder, probeAdapter } from '../load';

export const inspectCommand: Command = {
  name: 'inspect',
  summary: 'Describe a model folder: architecture, exact parameter counts, weight memory, and whether it fits the GPU.',
  description:
    'Reads config.json, the safetensors headers (not the weights) and the tokenizer, checks every tensor the architecture needs, ' +
    'and, when a WebGPU adapter is available, whether the weights fit it.',
  positionals: [{ name: 'model-dir', description: 'a Hugging Face model folder (config.json, model.safetensors or shards, tokenizer files)' }],
  options: {
    json: { type: 'boolean', description: 'print the summary as JSON (on stdout)' },
    'no-gpu': { type: 'boolean', description: 'do not look for a WebGPU adapter' },
  },
  async run({ positionals, options }, io) {
    const ckpt = await openModelFolder(positionals['model-dir']!);
    const summary = summarizeModel(ckpt);
    const { adapter, reason } = flag(options, 'no-gpu') ? { adapter: null, reason: 'not requested (--no-gpu)' } : await probeAdapter();
    const fit = adapter ? checkFit(summary, adapter) : undefined;
    if (flag(options, 'json')) {
      const { tensors: _perTensor, ...rest } = summary;
      io.out(JSON.stringify({ ...rest, adapter, adapterUnavailableReason: reason, fit: fit ?? null }, null, 2));
    } else {
      io.out(formatSummary(summary, fit, adapter, reason ?? undefined));
    }
    return 0;
  },
};
