// `gradprune <command> …`: parses the command line, prints help, runs the command, and turns every failure into
// one line on stderr. Exit codes: 0 success, 1 a failure the person can act on, 2 a bad command line, 70 a bug.

import { parseArgs } from 'node:util';
import { GradPruneError } from '../errors';
import type { CliIO, Command, CommandArgs } from './command';
import { COMMANDS } from './commands/index';
import { removeTemporariesOnInterrupt } from './outputs';

const PROGRAM = 'gradprune';
const EXIT_OK = 0;
const EXIT_FAILURE = 1;
const EXIT_USAGE = 2;
const EXIT_BUG = 70;

const processIO: CliIO = {
  out: (text) => process.stdout.write(text.endsWith('\n') ? text : `${text}\n`),
  err: (text) => process.stderr.write(text.endsWith('\n') ? text : `${text}\n`),
};

export async function main(argv: string[], io: CliIO = processIO, commands: readonly Command[] = COMMANDS): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined) {
    io.err(programHelp(commands));
    return EXIT_USAGE;
  }
  if (name === '--help' || name === '-h' || name === 'help') {
    const topic = rest[0] && commands.find((c) => c.name === rest[0]);
    io.out(topic ? commandHelp(topic) : programHelp(commands));
    return EXIT_OK;
  }
  const command = commands.find((c) => c.name === name);
  // The real process (not a test's in-process run): Ctrl-C removes half-written outputs on its way out.
  if (io === processIO) removeTemporariesOnInterrupt();
  if (!command) {
    io.err(`${PROGRAM}: unknown command "${name}". Commands: ${commands.map((c) => c.name).join(', ')}. Run \`${PROGRAM} --help\`.`);
    return EXIT_USAGE;
  }
  try {
    const args = parseCommandArgs(command, rest);
    if (args === 'help') {
      io.out(commandHelp(command));
      return EXIT_OK;
    }
    return await command.run(args, io);
  } catch (e) {
    return reportError(e, command, io);
  }
}

function reportError(e: unknown, command: Command, io: CliIO): number {
  if (e instanceof GradPruneError) {
    io.err(`${PROGRAM}: ${e.message}`);
    if (e.code === 'input') {
      io.err(`usage: ${usageLine(command)}  (see \`${PROGRAM} ${command.name} --help\`)`);
      return EXIT_USAGE;
    }
    return EXIT_FAILURE;
  }
  // Anything else escaping a command is a bug: say so, with the stack for the report.
  const err = e instanceof Error ? e : new Error(String(e));
  io.err(`${PROGRAM}: internal error: ${err.message}. This is a bug in GradPrune Studio; please report it.`);
  if (err.stack) io.err(err.stack);
  return EXIT_BUG;
}

/** Parse a command's arguments with node:util parseArgs; any mistake becomes a usage GradPruneError. */
export function parseCommandArgs(command: Command, argv: string[]): CommandArgs | 'help' {
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: argv,
      options: {
        ...Object.fromEntries(
          Object.entries(command.options).map(([k, o]) => [k, { type: o.type, ...(o.short && { short: o.short }), ...(o.multiple && { multiple: true }) }]),
        ),
        help: { type: 'boolean', short: 'h' },
      },
      allowPositionals: true,
      strict: true,
    });
  } catch (e) {
    if (!String((e as { code?: unknown }).code).startsWith('ERR_PARSE_ARGS_')) throw e; // a mistake in the command table
    // parseArgs messages end with advice about "--" that does not apply here; keep the first sentence.
    const message = (e as Error).message.split('. ')[0].replace(/\.$/, '');
    throw new GradPruneError('input', `${message}.`);
  }
  if (parsed.values.help) return 'help';
  const required = command.positionals.filter((p) => !p.optional);
  if (parsed.positionals.length < required.length) {
    throw new GradPruneError('input', `${command.name} needs ${required.map((p) => `<${p.name}>`).join(' ')}.`, {
      subject: required[parsed.positionals.length].name,
    });
  }
  if (parsed.positionals.length > command.positionals.length) {
    throw new GradPruneError('input', `unexpected argument "${parsed.positionals[command.positionals.length]}".`);
  }
  const positionals = Object.fromEntries(command.positionals.map((p, i) => [p.name, parsed.positionals[i]]));
  const { help: _help, ...options } = parsed.values;
  return { positionals, options };
}

function usageLine(c: Command): string {
  const pos = c.positionals.map((p) => (p.optional ? `[${p.name}]` : `<${p.name}>`));
  const opts = Object.entries(c.options).map(([k, o]) => `[--${k}${o.type === 'string' ? ` ${o.valueName ?? 'VALUE'}` : ''}]`);
  return [PROGRAM, c.name, ...pos, ...opts].join(' ');
}

function commandHelp(c: Command): string {
  const lines = [`usage: ${usageLine(c)}`, '', c.summary];
  if (c.description) lines.push('', c.description);
  if (c.positionals.length) {
    lines.push('', 'arguments:');
    for (const p of c.positionals) lines.push(`  ${p.name.padEnd(22)} ${p.description}`);
  }
  lines.push('', 'options:');
  for (const [k, o] of Object.entries(c.options)) {
    const left = `${o.short ? `-${o.short}, ` : ''}--${k}${o.type === 'string' ? ` ${o.valueName ?? 'VALUE'}` : ''}`;
    lines.push(`  ${left.padEnd(22)} ${o.description}`);
  }
  lines.push(`  ${'-h, --help'.padEnd(22)} show this help`);
  return lines.join('\n');
}

function programHelp(commands: readonly Command[]): string {
  return [
    `usage: ${PROGRAM} <command> [arguments] [options]`,
    '',
    'Prune the layers of a Hugging Face causal LM, guided by LoRA gradients (GradPruner), on WebGPU.',
    '',
    'commands:',
    ...commands.map((c) => `  ${c.name.padEnd(12)} ${c.summary}`),
    '',
    `Run \`${PROGRAM} <command> --help\` for a command's arguments and options.`,
  ].join('\n');
}
