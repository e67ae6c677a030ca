/**
 * Kubernetes resource quantities, with the grammar of apimachinery's `resource.ParseQuantity`:
 *
 *   quantity ::= [+-] number suffix      number ::= digits | digits. | digits.digits | .digits
 *   suffix   ::= "" | n | u | m | k | M | G | T | P | E        (decimal)
 *              | Ki | Mi | Gi | Ti | Pi | Ei                    (binary)
 *              | (e | E) [+-] digits                            (decimal exponent)
 *
 * `1E` is one exa, `1E3` a thousand; nothing around the quantity (no spaces).
 */
const QUANTITY = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+|[KMGTPE]i|[numkMGTPE])?$/;

export function isQuantity(value: string): boolean {
  return QUANTITY.test(value);
}

/** A quantity above zero: what a container's request and limit may be (the sidecar's are both). */
export function isPositiveQuantity(value: string): boolean {
  if (!QUANTITY.test(value) || value.startsWith('-')) return false;
  // The number before any suffix or exponent must have a non-zero digit: `0e3`, `0.0Mi` are zero.
  const number = /^[+]?([\d.]+)/.exec(value)![1]!;
  return /[1-9]/.test(number);
}
