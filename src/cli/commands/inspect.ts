// `gradprune inspect <model-dir> [--json]`: the model summary, parameter counts, weight memory and adapter fit,
// and how the paper's scoring job would run on the adapter (weights resident or streamed, memory, uploads).

import { formatBytes } from '../../format';
import { checkFit, formatSummary, summarizeModel } from '../../model/summary';
import { PAPER_LORA_RUN, loraConfigOf } from '../../nn/run-settings';
import { jobFit, type JobFit } from '../../nn/memory';
import { flag, MAX_GPU_MEMORY_OPTION, maxGpuMemoryOption, type Command } from '../command';
import { openModelFolder, probeAdapter } from '../load';

const JOB = PAPER_LORA_RUN;

/** "scoring job (4 × 256, rank 8, f16 weights): streamed — …" */
export function jobFitLine(fit: JobFit, weights: string): string {
  const job = `scoring job (${JOB.batchSize} × ${JOB.seqLen}, rank ${JOB.rank}, ${weights} weights)`;
  if (!fit.fits || !fit.estimate) return `${job}: does not fit — ${fit.reason}`;
  const e = fit.estimate;
  const gpu = `${formatBytes(e.total)} of GPU memory of ${formatBytes(fit.limitBytes)} allowed`;
  if (fit.residency === 'resident') return `${job}: weights resident — ${gpu}`;
  const reread = e.rereadLayers ? ` (${e.rereadLayers} layers re-read from the files at each upload)` : '';
  return `${job}: weights streamed layer by layer — ${gpu}; ${formatBytes(e.hostBytes)} of host memory${reread}; ${formatBytes(e.uploadBytesPerStep)} uploaded per step`;
}

export const inspectCommand: Command = {
  name: 'inspect',
  summary: 'Describe a model folder: architecture, exact parameter counts, weight memory, and whether it fits the GPU.',
  description:
    'Reads config.json, the safetensors headers (not the weights) and the tokenizer, checks every tensor the architecture needs, ' +
    'and, when a WebGPU adapter is available, whether the weights fit it and how the paper\'s scoring job would run there ' +
    '(weights resident, or streamed layer by layer from host memory, with the memory and uploads that costs).',
  positionals: [{ name: 'model-dir', description: 'a Hugging Face model folder (config.json, model.safetensors or shards, tokenizer files)' }],
  options: {
    json: { type: 'boolean', description: 'print the summary as JSON (on stdout)' },
    'no-gpu': { type: 'boolean', description: 'do not look for a WebGPU adapter' },
    'max-gpu-memory': MAX_GPU_MEMORY_OPTION,
  },
  async run({ positionals, options }, io) {
    const budget = maxGpuMemoryOption(options) ?? undefined;
    const ckpt = await openModelFolder(positionals['model-dir']!);
    const summary = summarizeModel(ckpt);
    const { adapter, reason } = flag(options, 'no-gpu') ? { adapter: null, reason: 'not requested (--no-gpu)' } : await probeAdapter();
    const fit = adapter ? checkFit(summary, adapter) : undefined;
    const weights = fit?.weightPrecision ?? 'f32';
    const job = adapter
      ? jobFit(ckpt.config, { batchSize: JOB.batchSize, seqLen: JOB.seqLen, lora: loraConfigOf(JOB), weights, checkpointing: JOB.checkpointing, training: true }, adapter, budget)
      : null;
    if (flag(options, 'json')) {
      const { tensors: _perTensor, ...rest } = summary;
      const scoringJob = job && { ...job, batchSize: JOB.batchSize, seqLen: JOB.seqLen, rank: JOB.rank, weights };
      io.out(JSON.stringify({ ...rest, adapter, adapterUnavailableReason: reason, fit: fit ?? null, scoringJob }, null, 2));
    } else {
      io.out(formatSummary(summary, fit, adapter, reason ?? undefined) + (job ? `\n${jobFitLine(job, weights)}` : ''));
    }
    return 0;
  },
};
