/**
 * AdmissionReview `warnings` as Kubernetes wants them: "Limit warnings to 120 characters if possible", no
 * newlines, and not many (the API server truncates long and numerous warnings, kubectl prints each on a line).
 */
export const MAX_WARNING_LENGTH = 120;
export const MAX_WARNINGS = 10;

const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]+/g;

/**
 * What the cleaning below would change: a control character, whitespace other than one plain space, or a space
 * at either end. Most warnings have none, and one test costs far less than two replacements (a pod may bring
 * 100,000 warnings, one per container).
 */
const NEEDS_CLEANING = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]|[^\S ]| {2}|^ | $/;

/** One warning on one line, at most MAX_WARNING_LENGTH characters (cut with an ellipsis). */
export function warningLine(text: string): string {
  const line = NEEDS_CLEANING.test(text) ? text.replace(CONTROL_CHARACTERS, ' ').replace(/\s+/g, ' ').trim() : text;
  if (line.length <= MAX_WARNING_LENGTH) return line;
  return `${line.slice(0, MAX_WARNING_LENGTH - 1).trimEnd()}…`;
}

/** Cleaned, de-duplicated warnings, at most MAX_WARNINGS (the last one then says how many were left out). */
export function admissionWarnings(warnings: readonly string[]): string[] {
  const lines = [...new Set(warnings.map(warningLine).filter((line) => line !== ''))];
  if (lines.length <= MAX_WARNINGS) return lines;
  const kept = lines.slice(0, MAX_WARNINGS - 1);
  kept.push(`${lines.length - kept.length} more warnings not shown`);
  return kept;
}
