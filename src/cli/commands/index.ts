// Every CLI command, in the order `gradprune --help` lists them. Add a command: write ./<name>.ts exporting a
// Command (see ../command.ts) and list it here.

import type { Command } from '../command';
import { inspectCommand } from './inspect';

export const COMMANDS: readonly Command[] = [inspectCommand];
