/**
 * How kubectl reads a plain YAML scalar. kubectl converts YAML to JSON with sigs.k8s.io/yaml, which decodes with
 * go-yaml v2: YAML 1.1 booleans (yes/no/on/off/y/n in three casings), `~`/`null` nulls, Go's base-0 integers
 * after removing every `_` (0777 octal, 0x, 0o, 0b, 1_000), floats of a restricted shape, and everything else a
 * string (timestamps and sexagesimal `1:20` included). These rules decide both what the input means and which
 * strings the output must quote.
 */
export type PlainMeaning =
  | { kind: 'string' }
  | { kind: 'null' }
  | { kind: 'bool'; value: boolean }
  | { kind: 'int'; value: bigint }
  | { kind: 'float'; value: number }
  | { kind: 'merge' };

const TRUE = new Set(['y', 'Y', 'yes', 'Yes', 'YES', 'true', 'True', 'TRUE', 'on', 'On', 'ON']);
const FALSE = new Set(['n', 'N', 'no', 'No', 'NO', 'false', 'False', 'FALSE', 'off', 'Off', 'OFF']);
const NULL = new Set(['', '~', 'null', 'Null', 'NULL']);
const SPECIAL_FLOATS: ReadonlyMap<string, number> = new Map([
  ...['.nan', '.NaN', '.NAN'].map((s) => [s, Number.NaN] as const),
  ...['.inf', '.Inf', '.INF', '+.inf', '+.Inf', '+.INF'].map((s) => [s, Number.POSITIVE_INFINITY] as const),
  ...['-.inf', '-.Inf', '-.INF'].map((s) => [s, Number.NEGATIVE_INFINITY] as const),
]);

/** go-yaml's yamlStyleFloat: the only shapes it hands to ParseFloat after integers failed. */
const YAML_STYLE_FLOAT = /^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$/;
/** What Go's ParseFloat accepts after a leading `.` (hex floats and Inf cannot start with a dot). */
const DOT_FLOAT = /^\.[0-9]+([eE][-+]?[0-9]+)?$/;

const INT64_MIN = -(2n ** 63n);
const UINT64_MAX = 2n ** 64n - 1n;

/** Go's strconv.ParseInt(s, 0, 64), then ParseUint(s, 0, 64): the integer, or undefined when Go refuses it. */
function goBase0Integer(text: string): bigint | undefined {
  const match = /^([+-]?)(0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+|0[0-7]*|[1-9][0-9]*)$/.exec(text);
  if (!match) return undefined;
  const [, sign, digits] = match as unknown as [string, string, string];
  const lower = digits.toLowerCase();
  const magnitude =
    lower.startsWith('0x') || lower.startsWith('0b')
      ? BigInt(lower)
      : lower.startsWith('0o')
        ? BigInt(`0o${lower.slice(2)}`)
        : lower.length > 1 && lower.startsWith('0')
          ? BigInt(`0o${lower.slice(1)}`)
          : BigInt(lower);
  const value = sign === '-' ? -magnitude : magnitude;
  if (value < INT64_MIN) return undefined;
  // ParseUint takes no sign, so `+` beyond int64 is not an integer to go-yaml.
  if (value > 2n ** 63n - 1n && (sign !== '' || value > UINT64_MAX)) return undefined;
  return value;
}

/** Go's ParseFloat fails on overflow, and go-yaml then keeps the text as a string (`1e400`). */
function goFloat(text: string): PlainMeaning {
  const value = Number(text);
  return Number.isFinite(value) ? { kind: 'float', value } : { kind: 'string' };
}

/** The meaning go-yaml v2 gives an untagged plain scalar. */
export function resolvePlain(text: string): PlainMeaning {
  if (TRUE.has(text)) return { kind: 'bool', value: true };
  if (FALSE.has(text)) return { kind: 'bool', value: false };
  if (NULL.has(text)) return { kind: 'null' };
  if (text === '<<') return { kind: 'merge' };
  const special = SPECIAL_FLOATS.get(text);
  if (special !== undefined) return { kind: 'float', value: special };
  const first = text[0] ?? '';
  if (first === '.') return DOT_FLOAT.test(text) ? goFloat(text) : { kind: 'string' };
  if (!/[0-9+-]/.test(first)) return { kind: 'string' };
  const plain = text.replaceAll('_', '');
  const integer = goBase0Integer(plain);
  if (integer !== undefined) return { kind: 'int', value: integer };
  if (YAML_STYLE_FLOAT.test(plain)) return goFloat(plain);
  return { kind: 'string' };
}

/** True when a plain scalar with this text would not be read back as this string. */
export function plainIsNotString(text: string): boolean {
  return resolvePlain(text).kind !== 'string';
}
