import { isUtf8 } from 'node:buffer';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeManifest, firstInvalidUtf8 } from '../../src/offline/decode.js';
import { resolvePlain } from '../../src/offline/kubectl-scalars.js';

describe('manifest bytes', () => {
  it('finds the first invalid UTF-8 byte exactly where Node’s validator stops agreeing', () => {
    const bytes = fc.oneof(fc.uint8Array({ maxLength: 24 }), fc.string({ unit: 'binary' }).map((s) => new Uint8Array(Buffer.from(s))));
    fc.assert(
      fc.property(bytes, (input) => {
        const offset = firstInvalidUtf8(input);
        expect(offset === -1).toBe(isUtf8(input));
        if (offset >= 0) expect(isUtf8(input.subarray(0, offset))).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });

  it('decodes what it accepts to the same text as a strict decoder', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (text) => {
        const decoded = decodeManifest(new Uint8Array(Buffer.from(text)));
        expect(decoded).toEqual({ ok: true, text });
      }),
    );
  });
});

describe('plain scalars as kubectl reads them', () => {
  // Each expectation was checked with `kubectl label --local -f - x=1 -o json` (kubectl 1.32).
  it.each([
    ['yes', true], ['Y', true], ['On', true], ['OFF', false], ['n', false], ['~', null], ['', null], ['Null', null],
    ['0777', 511], ['0o17', 15], ['0x1F', 31], ['-0x1f', -31], ['0b101', 5], ['1_000', 1000], ['0_777', 511], ['1__0', 10],
    ['+12', 12], ['.5', 0.5], ['1e3', 1000], ['0.1e+3', 100], ['1.', 1], ['1_0.5', 10.5], ['08', 8],
    ['1:20', '1:20'], ['2001-12-14', '2001-12-14'], ['12e', '12e'], ['_1', '_1'], ['0b', '0b'], ['1e400', '1e400'], ['yES', 'yES'],
  ])('%s', (text, expected) => {
    const meaning = resolvePlain(text);
    const value = meaning.kind === 'string' ? text : meaning.kind === 'null' ? null : 'value' in meaning ? Number(meaning.value) : undefined;
    expect(typeof expected === 'boolean' ? (meaning as { value?: unknown }).value : value).toEqual(expected);
  });
});
