// Every CLI command, in the order `gradprune --help` lists them. Add a command: write ./<name>.ts exporting a
// Command (see ../command.ts) and list it here.

import type { Command } from '../command';
import { evalCommand } from './eval';
import { generateCommand } from './generate';
import { inspectCommand } from './inspect';
import { scoreCommand } from './score';
import { pruneCommand } from './prune';
import { widthPruneCommand } from './width-prune';
import { demoCommand } from './demo';
import { finetuneCommand } from './finetune';
import { exportCommand } from './export';
import { compareCommand } from './compare';

export const COMMANDS: readonly Command[] = [
  inspectCommand,
  scoreCommand,
  pruneCommand,
  widthPruneCommand,
  compareCommand,
  demoCommand,
  finetuneCommand,
  evalCommand,
  generateCommand,
  exportCommand,
];
