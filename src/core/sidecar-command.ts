/**
 * The sidecar's shell script (the container runs `/bin/sh -c <script>`, busybox ash, with `stdin`/`tty` true).
 *
 * It has three jobs: write the hello file; give `kubectl attach -it POD -c sidecar` an interactive prompt on the
 * tty; and still exit promptly, with status 0, when the container is stopped. The shape follows from how signals
 * work; the behaviour is proven with Debian's busybox under a real pty in test/core/sidecar-command.test.ts:
 *
 * - The obvious `exec sh -i` never exits on SIGTERM: an interactive shell ignores TERM, and when the sidecar is
 *   PID 1 of its container (a pod without `shareProcessNamespace`) the kernel also drops every signal PID 1 has no
 *   handler for. Every pod deletion would wait out the 30 s grace period, then SIGKILL.
 * - So a non-interactive outer shell stays in charge and installs a TERM trap: a handler makes the signal
 *   deliverable to PID 1, and it works the same when the sidecar is an ordinary process (with
 *   `shareProcessNamespace: true` the pause container is PID 1).
 * - A trap only runs when the shell is not busy with a foreground command (ash, like POSIX shells, defers it until
 *   the command ends), but `wait` is interrupted by it at once. Hence the interactive shell runs in the background
 *   and the outer shell sits in `wait`. A TERM trap set inside the interactive shell instead does not help:
 *   busybox 1.35 did not run it while the shell sat at its prompt, nor can it while a foreground command runs.
 * - A background job of a non-interactive shell gets stdin from /dev/null (POSIX), applied before its own
 *   redirections, so `<&0` would not undo it. The tty is saved on fd 3 first and handed over with `<&3`
 *   (and `3<&-` keeps the extra descriptor away from the operator's commands).
 * - The trap hangs up (HUP) the interactive shell (`$!`, the last background job), then exits 0. When the sidecar
 *   is PID 1 its exit kills the whole namespace anyway; otherwise the kernel's hangup of the terminal's foreground
 *   group (the shell leads the session that owns the tty) usually does it too, but the explicit HUP does not
 *   depend on that (`tty: false`). Jobs the operator put in the background are left to the runtime, which kills
 *   what remains of a container that shares a PID namespace when its main process exits.
 * - `exit` (or Ctrl-D) at the prompt starts a fresh prompt instead of ending the container (which would count a
 *   restart and back off). The interactive shell then has restored the tty's foreground process group, so the next
 *   one can take the tty. A shell killed by a signal (status >= 128) cannot have done that: the script exits with
 *   that status and the kubelet restarts the container. The 1 s pause, itself interruptible by TERM, bounds the
 *   loop if stdin is ever at end of file (e.g. a pod edited to `stdin: false`).
 * - The outer shell, as PID 1, also reaps orphans: `wait` collects any exited child.
 *
 * Known limitation (POSIX again): a background job of a shell without job control starts with SIGINT and SIGQUIT
 * ignored, and an ignored signal is inherited by everything the interactive shell runs. Ctrl-C does not stop a
 * foreground `sleep`/`tail -f` at the prompt (busybox `ping` and `top` handle it themselves); Ctrl-Z then
 * `kill -9 %1` does. Only the background + `wait` shape keeps SIGTERM working in every case, so that is the trade.
 *
 * `sh` is looked up in PATH (in the busybox image it is busybox ash); the script uses only shell builtins and the
 * `sleep` applet.
 */
export const SIDECAR_HELLO = 'Hello from the side container';

/** `value` as one sh word, literal: single quotes, each embedded `'` written as `'\''`. */
function shellQuote(value: string): string {
  return `'${value.replaceAll("'", `'\\''`)}'`;
}

/** The script for `command: ['/bin/sh', '-c']`, `args: [script]`, writing SIDECAR_HELLO to `helloFile`. */
export function sidecarScript(helloFile: string): string {
  return [
    `trap 'kill -HUP $! 2>/dev/null; exit 0' TERM`,
    `echo ${shellQuote(SIDECAR_HELLO)} > ${shellQuote(helloFile)}`,
    'exec 3<&0',
    'while :; do',
    '  sh -i <&3 3<&- &',
    '  wait $!',
    '  status=$?',
    '  [ "$status" -lt 128 ] || exit "$status"',
    '  sleep 1 & wait $!',
    'done',
    '',
  ].join('\n');
}
