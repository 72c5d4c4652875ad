// `gradprune generate <model-dir> --prompt TEXT [--max-new-tokens N] [--temperature T] [--top-k K] [--top-p P] [--json]`:
// continue a prompt with the model (optionally with a PEFT LoRA adapter); temperature 0 is greedy decoding. On the GPU
// the tokens go through a KV cache one at a time; --cpu recomputes with the float32 reference.

import { GradPruneError } from '../../errors';
import { loadGenerationEngine } from '../../eval/engines';
import { checkpointStopIds, generateIds, type Generated } from '../../eval/generation';
import { precisionLine, type WeightStorage } from '../../nn/precision';
import { flag, intOption, MAX_GPU_MEMORY_OPTION, maxGpuMemoryOption, numberOption, PRECISION_OPTION, precisionOption, usageError, type Command, type OptionValues } from '../command';
import { openModelFolder } from '../load';
import { engineOption, loraOption } from './eval';

export interface GenerateReport {
  model: string;
  prompt: string | null;
  promptIds: number[];
  /** The generated tokens only. */
  ids: number[];
  text: string;
  stop: Generated['stop'];
  temperature: number;
  topK: number;
  topP: number;
  engine: 'gpu' | 'cpu';
  /** How the weights were stored ('auto' resolved against the adapter; always f32 on the CPU). */
  weights: WeightStorage;
}

/** `--prompt-ids 1,2,3`: exact token ids instead of text (for reproducing a sequence). */
function promptIdsOption(options: OptionValues, vocabSize: number): number[] | null {
  const raw = options['prompt-ids'];
  if (raw === undefined) return null;
  if (typeof raw !== 'string' || !/^\s*\d+(\s*,\s*\d+)*\s*$/.test(raw)) throw usageError('--prompt-ids must be token ids separated by commas, e.g. 1,450,4996.', 'prompt-ids');
  const ids = raw.split(',').map((s) => Number(s.trim()));
  const bad = ids.find((id) => id >= vocabSize);
  if (bad !== undefined) throw usageError(`--prompt-ids: token id ${bad} is outside the model's vocabulary (0..${vocabSize - 1}).`, 'prompt-ids');
  return ids;
}

export const generateCommand: Command = {
  name: 'generate',
  summary: 'Continue a prompt with a model (greedy at temperature 0), optionally with a LoRA adapter.',
  description:
    'The prompt is tokenized as the tokenizer does by default (with BOS where the model uses one). Generation stops at the ' +
    "end-of-sequence token (the tokenizer's, and generation_config.json's or config.json's), after --max-new-tokens, or at the model's maximum length.",
  positionals: [{ name: 'model-dir', description: 'a Hugging Face model folder' }],
  options: {
    prompt: { type: 'string', valueName: 'TEXT', description: 'the text to continue' },
    'prompt-ids': { type: 'string', valueName: 'IDS', description: 'token ids to continue instead of --prompt (comma-separated)' },
    'max-new-tokens': { type: 'string', valueName: 'N', description: 'tokens to generate at most (default 32)' },
    temperature: { type: 'string', valueName: 'T', description: '0 (default) for greedy decoding; > 0 samples' },
    'top-k': { type: 'string', valueName: 'K', description: 'sample only from the K most likely tokens (default 0: all)' },
    'top-p': { type: 'string', valueName: 'P', description: 'sample only from the most likely tokens that make up probability P (default 1: all)' },
    seed: { type: 'string', valueName: 'N', description: 'seed of the sampler (default 0)' },
    lora: { type: 'string', valueName: 'DIR', description: 'a PEFT LoRA adapter folder to apply' },
    cpu: { type: 'boolean', description: 'use the float32 CPU reference instead of the GPU (slow: tiny models only)' },
    precision: PRECISION_OPTION,
    'max-gpu-memory': MAX_GPU_MEMORY_OPTION,
    json: { type: 'boolean', description: 'print the prompt ids, generated ids and text as JSON (on stdout)' },
  },
  async run({ positionals, options }, io) {
    const maxNewTokens = intOption(options, 'max-new-tokens', 32, { min: 1, max: 100_000 });
    const temperature = numberOption(options, 'temperature', 0, { min: 0 });
    const topK = intOption(options, 'top-k', 0, { min: 0 });
    const topP = numberOption(options, 'top-p', 1, { min: 0, max: 1 });
    if (topP === 0) throw usageError('--top-p must be above 0 (1 keeps every token).', 'top-p');
    const seed = intOption(options, 'seed', 0);
    const weights = precisionOption(options);
    const text = options.prompt;
    if (text !== undefined && typeof text !== 'string') throw usageError('--prompt needs text.', 'prompt');
    if (text !== undefined && options['prompt-ids'] !== undefined) throw usageError('Give --prompt or --prompt-ids, not both.', 'prompt');
    const ckpt = await openModelFolder(positionals['model-dir']!);
    const promptIds = promptIdsOption(options, ckpt.config.vocabSize) ?? (text !== undefined ? ckpt.tokenizer.encode(text, { addSpecialTokens: true }) : null);
    if (!promptIds) throw usageError('generate needs --prompt TEXT (or --prompt-ids).', 'prompt');
    if (promptIds.length === 0) throw usageError('The prompt encodes to no tokens: give some text.', 'prompt');
    const maxLen = ckpt.config.maxPositionEmbeddings;
    if (promptIds.length >= maxLen) {
      throw new GradPruneError('input', `The prompt has ${promptIds.length} tokens; the model holds ${maxLen}, leaving no room to generate.`, { subject: 'prompt' });
    }
    const lora = await loraOption(options, ckpt.config);
    const kind = engineOption(options);
    const engine = await loadGenerationEngine(ckpt.config, ckpt.store, { kind, maxLength: Math.min(maxLen, promptIds.length + maxNewTokens), lora, weights, maxGpuMemory: maxGpuMemoryOption(options) });
    io.err(precisionLine(engine.precision));
    let g: Generated;
    try {
      const stopIds = checkpointStopIds(ckpt);
      g = await generateIds(engine.model, promptIds, { maxNewTokens, temperature, topK, topP, seed, stopIds });
    } finally {
      engine.destroy();
    }
    const generated = ckpt.tokenizer.decode(g.ids, { skipSpecialTokens: true });
    const report: GenerateReport = { model: ckpt.name, prompt: text ?? null, promptIds, ids: g.ids, text: generated, stop: g.stop, temperature, topK, topP, engine: kind, weights: engine.precision.storage };
    if (flag(options, 'json')) io.out(JSON.stringify(report, null, 2));
    else {
      io.out(`${text ?? ckpt.tokenizer.decode(promptIds, { skipSpecialTokens: true })}${generated}`);
      io.err(`(${g.ids.length} new tokens; stopped: ${g.stop})`);
    }
    return 0;
  },
};
