/**
 * The sidecar's shell script. It writes the hello file, then gives `kubectl attach -it` an interactive prompt.
 * PRELIMINARY: replaced by the proven version (see test/core/sidecar-command.test.ts).
 */
export const SIDECAR_HELLO = 'Hello from the side container';

export function sidecarScript(helloFile: string): string {
  return `echo '${SIDECAR_HELLO}' > ${helloFile}; exec sh -i`;
}
