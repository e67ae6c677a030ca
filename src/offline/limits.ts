/**
 * Bounds on nesting, checked before anything recursive touches the input: `yaml`'s composer, JSON.stringify
 * and the engine all recurse, and a 100k-deep document would overflow the stack of any of them.
 */
import { Lexer, type CST } from 'yaml';

/** Far deeper than any manifest (CRD schemas reach a few dozen levels), far shallower than the stack allows. */
export const MAX_DEPTH = 1000;

/**
 * The first document whose nesting may pass MAX_DEPTH, from the lexer's tokens alone: the parser builds a tree
 * as deep as the input (about 1 KiB per level), so a megabyte of `[[[[` must be refused before it is parsed. A
 * node's depth is at most its line's indentation plus the block indicators before it on the line (`- - - x`)
 * plus the open flow brackets, so a structural line indented past MAX_DEPTH columns is refused too.
 */
export function firstTooDeepDocument(text: string): number | undefined {
  let document = 1;
  // Documents are counted as the composer counts them: `---` starts one unless nothing came before it but
  // comments or directives, and content after `...` starts one.
  let started = false;
  let ended = false;
  let indent = 0;
  let indicators = 0;
  let flow = 0;
  let lineStart = true;
  for (const token of new Lexer().lex(text)) {
    if (token === '---') {
      if (started) document++;
      [started, ended] = [true, false];
      continue;
    }
    if (token === '...') {
      ended = started;
      continue;
    }
    if (token === '\n' || token === '\r\n') {
      [lineStart, indent, indicators] = [true, 0, 0];
      continue;
    }
    if (lineStart && /^ +$/.test(token)) indent = token.length;
    else if (token === '[' || token === '{') flow++;
    else if (token === ']' || token === '}') flow = Math.max(0, flow - 1);
    else if (flow === 0 && (token === '-' || token === '?' || token === ':')) indicators++;
    lineStart = false;
    if (token.trim() !== '' && !token.startsWith('#') && !token.startsWith('%') && token !== '\x02') {
      if (ended) document++;
      [started, ended] = [true, false];
    }
    if (indent + indicators + flow > MAX_DEPTH) return document;
  }
  return undefined;
}

/** Nesting depth of a parsed-but-not-composed YAML document, walked without recursion. */
export function cstDepth(document: CST.Token): number {
  let deepest = 0;
  const stack: Array<[CST.Token, number]> = [[document, 0]];
  while (stack.length > 0) {
    const [token, depth] = stack.pop()!;
    deepest = Math.max(deepest, depth);
    if (token.type === 'document') {
      if (token.value) stack.push([token.value, depth]);
    } else if (token.type === 'block-map' || token.type === 'block-seq' || token.type === 'flow-collection') {
      for (const item of token.items) {
        const { key, value } = item as { key?: CST.Token | null; value?: CST.Token };
        if (key) stack.push([key, depth + 1]);
        if (value) stack.push([value, depth + 1]);
      }
    }
  }
  return deepest;
}

export interface JsonScan {
  depth: number;
  /** An integer literal a JavaScript number cannot hold exactly, if any. */
  inexactInteger?: string;
}

/** Depth and integer literals of JSON text, in one pass that skips strings. */
export function scanJson(text: string): JsonScan {
  let depth = 0;
  let deepest = 0;
  let inexactInteger: string | undefined;
  const token = /"(?:[^"\\]|\\.)*"|[[{]|[\]}]|-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?/gs;
  for (let match = token.exec(text); match; match = token.exec(text)) {
    const [found] = match;
    const first = found[0];
    if (first === '[' || first === '{') deepest = Math.max(deepest, ++depth);
    else if (first === ']' || first === '}') depth--;
    else if (first !== '"' && inexactInteger === undefined && /^-?\d+$/.test(found) && !Number.isSafeInteger(Number(found))) {
      inexactInteger = found;
    }
  }
  return inexactInteger === undefined ? { depth: deepest } : { depth: deepest, inexactInteger };
}
