import { describe, expect, it } from 'vitest';
import { errorLine, oneLine } from '../src/error-line.js';

describe('oneLine', () => {
  it('turns runs of control characters and the blanks around them into one space', () => {
    expect(oneLine(' a \n\t b\u0000c\u007f ')).toBe('a b c');
  });

  it('keeps at most max characters, an ellipsis marking the cut', () => {
    expect(oneLine('abcdef', 4)).toBe('abc…');
    expect(oneLine('abcd', 4)).toBe('abcd');
  });
});

describe('errorLine', () => {
  it('is the message of an Error, or the string of anything else, on one line', () => {
    expect(errorLine(new Error('first\n  second'))).toBe('first second');
    expect(errorLine(42)).toBe('42');
    expect(errorLine(new Error('x'.repeat(300)), 10)).toBe(`${'x'.repeat(9)}…`);
  });
});
