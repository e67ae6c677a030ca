/** Kubernetes `major.minor` versions as reported by /version and node status (`v1.33.2`, `1.33+`, `v1.31.4-eks-1`). */
export interface MinorVersion {
  major: number;
  minor: number;
}

export function parseMinorVersion(text: string | undefined): MinorVersion | undefined {
  if (text === undefined) return undefined;
  const match = /^v?(\d+)\.(\d+)/.exec(text.trim());
  if (!match) return undefined;
  return { major: Number(match[1]), minor: Number(match[2]) };
}

export function isAtLeast(text: string | undefined, major: number, minor: number): boolean {
  const version = parseMinorVersion(text);
  if (!version) return false;
  return version.major > major || (version.major === major && version.minor >= minor);
}
