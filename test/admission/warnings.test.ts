import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_WARNING_LENGTH, warningLine } from '../../src/admission/warnings.js';

/** The cleaning spelled out in full: what the shortcut for already-clean warnings must agree with. */
function cleanedInFull(text: string): string {
  const line = text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]+/g, ' ').replace(/\s+/g, ' ').trim();
  return line.length <= MAX_WARNING_LENGTH ? line : `${line.slice(0, MAX_WARNING_LENGTH - 1).trimEnd()}…`;
}

const awkward = fc.constantFrom(' ', '  ', '\t', '\n', '\r', '\u0000', '\u0085', '\u00a0', '\u2028', '\u2029', '\ufeff', '\u3000', 'a', 'é', '…');

describe('warningLine', () => {
  it('agrees with the full cleaning on any text, clean or not', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: 'grapheme', maxLength: 200 }), fc.array(awkward, { maxLength: 150 }).map((parts) => parts.join(''))), (text) => {
        expect(warningLine(text)).toBe(cleanedInFull(text));
      }),
      { numRuns: 2000 },
    );
  });

  it('leaves a clean warning as it is and cleans the rest', () => {
    expect(warningLine('container c1 not given the shared volume: /pod-data is already used by volume data')).toBe(
      'container c1 not given the shared volume: /pod-data is already used by volume data',
    );
    expect(warningLine(' a\u00a0 b\n\u0001c ')).toBe('a b c');
  });
});
