// The options every command that reads a dataset shares (score, finetune, eval): the prompt template and the EOS
// setting, parsed in one place so that the three commands read them alike.

import type { ReadOptions } from '../data/types';
import { unescapeTemplate } from '../data/template';
import { flag, usageError, type OptionSpec, type OptionValues } from './command';

export const DATA_OPTIONS: Record<string, OptionSpec> = {
  template: {
    type: 'string',
    valueName: 'TEXT',
    description:
      'the prompt template: {column} placeholders, the last one the target, \\n for a newline, e.g. "{question}\\n{answer}" ' +
      '(default: the format\'s own; the data line on stderr shows the one in force)',
  },
  'prompt-template': { type: 'string', valueName: 'TEXT', description: 'the same as --template' },
  eos: { type: 'boolean', description: "append the tokenizer's end-of-sequence token to every target (default, except classification labels)" },
  'no-eos': { type: 'boolean', description: 'do not append it (default for classification labels scored by log-likelihood)' },
};

/** --template / --prompt-template and --eos / --no-eos as dataset read options (absent: the format's defaults). */
export function dataOptionsFrom(options: OptionValues): Pick<ReadOptions, 'template' | 'appendEos'> {
  const given = (['template', 'prompt-template'] as const).filter((name) => options[name] !== undefined);
  if (given.length > 1) throw usageError('--template and --prompt-template are the same option: give one.', 'template');
  const raw = given.length ? options[given[0]] : undefined;
  if (raw !== undefined && typeof raw !== 'string') throw usageError(`--${given[0]} needs a value, e.g. "{question}\\n{answer}".`, given[0]);
  if (flag(options, 'eos') && flag(options, 'no-eos')) throw usageError('--eos and --no-eos contradict each other: give one.', 'eos');
  const appendEos = flag(options, 'eos') ? true : flag(options, 'no-eos') ? false : undefined;
  return { ...(raw !== undefined ? { template: unescapeTemplate(raw) } : {}), ...(appendEos !== undefined ? { appendEos } : {}) };
}
