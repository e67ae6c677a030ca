/**
 * What signals mean to a running webhook. SIGTERM/SIGINT: the graceful stop (drain, then every part closes);
 * a second one ends the drain at once, in-flight requests still answered. SIGHUP (a closed terminal, a
 * supervisor's reload) never stops the server: every part re-reads what it watches. Signals are caught from
 * before the listeners open: a SIGTERM during start-up still means a clean stop once started.
 */
import { EXIT_FAILURE, EXIT_OK } from '../cli/io.js';
import type { Webhook } from './webhook.js';

/** Starts the webhook and runs it until a signal stops it; resolves with the exit code. */
export async function runUntilSignal(start: () => Promise<Webhook>, startFailed: (err: unknown) => number): Promise<number> {
  let webhook: Webhook | undefined;
  let signalled: NodeJS.Signals | undefined;
  let hurried = false;
  let settle: (code: number) => void = () => {};
  const stopped = new Promise<number>((resolve) => {
    settle = resolve;
  });
  const stop = (running: Webhook, signal: NodeJS.Signals): void => {
    running.stop(signal).then(
      () => settle(EXIT_OK),
      (err: unknown) => {
        running.log.error({ err }, 'shutdown failed');
        settle(EXIT_FAILURE);
      },
    );
    if (hurried) running.hurry();
  };
  const onStop = (signal: NodeJS.Signals): void => {
    if (signalled !== undefined) {
      hurried = true;
      webhook?.log.warn({ signal }, 'second signal: ending the drain now, answering what is in flight');
      webhook?.hurry();
      return;
    }
    signalled = signal;
    if (webhook !== undefined) stop(webhook, signal);
  };
  const onHangup = (): void => {
    webhook?.log.info({ signal: 'SIGHUP' }, 'SIGHUP: re-reading the configuration and certificate files');
    void webhook?.reload();
  };
  process.on('SIGTERM', onStop);
  process.on('SIGINT', onStop);
  process.on('SIGHUP', onHangup);
  const removeHandlers = (): void => {
    process.off('SIGTERM', onStop);
    process.off('SIGINT', onStop);
    process.off('SIGHUP', onHangup);
  };

  try {
    webhook = await start();
  } catch (err) {
    removeHandlers();
    return startFailed(err);
  }
  if (signalled !== undefined) stop(webhook, signalled);
  const code = await stopped;
  removeHandlers();
  return code;
}
