import { PassThrough } from 'node:stream';
import type { CommandIo } from '../../src/cli/io.js';

export interface CapturedIo extends CommandIo {
  out(): string;
  err(): string;
}

/** Real streams, collected: the subcommand writes exactly as it would to a terminal. */
export function captureIo(stdin = ''): CapturedIo {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const outChunks: Buffer[] = [];
  const errChunks: Buffer[] = [];
  stdout.on('data', (c: Buffer) => outChunks.push(c));
  stderr.on('data', (c: Buffer) => errChunks.push(c));
  return {
    stdout,
    stderr,
    readStdin: async () => stdin,
    out: () => Buffer.concat(outChunks).toString('utf8'),
    err: () => Buffer.concat(errChunks).toString('utf8'),
  };
}
