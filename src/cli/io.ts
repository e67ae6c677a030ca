import { parseArgs, type ParseArgsConfig } from 'node:util';
import { errorLine } from '../error-line.js';

/** The streams and input a subcommand gets from the composition root; tests pass their own. */
export interface CommandIo {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  /** Reads all of standard input (only called when the input is `-`); bytes are decoded by the reader. */
  readStdin?: () => Promise<string | Uint8Array>;
}

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

/** The raw bytes: decoding (byte order marks, invalid UTF-8) is the reader's to judge. */
export async function readAllStdin(): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** A flag the subcommand refuses: its message is the one line shown above the usage (exit 2). */
export class UsageError extends Error {}

type FlagOptions = NonNullable<ParseArgsConfig['options']>;
type StrictFlags<O extends FlagOptions> = { args: string[]; options: O; strict: true; allowPositionals: false };

/**
 * The flag values, as node:util parses them (no positionals, no unknown flags), or a UsageError. parseArgs appends
 * a hint about `--` that only confuses: the first sentence of its message is the useful part.
 */
export function parseFlags<O extends FlagOptions>(argv: string[], options: O): ReturnType<typeof parseArgs<StrictFlags<O>>>['values'] {
  try {
    return parseArgs<StrictFlags<O>>({ args: argv, options, strict: true, allowPositionals: false }).values;
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    throw new UsageError((message.split('\n')[0] ?? message).split('. ')[0] ?? message);
  }
}

/**
 * Parses a subcommand's flags, or settles its exit: a usage error is one line and the usage on stderr (exit 2),
 * `--help` is the usage on stdout (exit 0).
 */
export function flagsOrExit<F extends { help: boolean }>(
  command: string,
  usage: string,
  parse: () => F,
  out: { stdout: NodeJS.WritableStream; stderr: NodeJS.WritableStream },
  describe: (err: unknown) => string = errorLine,
): { flags: F } | { exitCode: number } {
  let flags: F;
  try {
    flags = parse();
  } catch (err) {
    out.stderr.write(`sidecar-injector ${command}: ${describe(err)}\n\n${usage}`);
    return { exitCode: EXIT_USAGE };
  }
  if (flags.help) {
    out.stdout.write(usage);
    return { exitCode: EXIT_OK };
  }
  return { flags };
}
