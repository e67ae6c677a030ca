/**
 * A budget of request-body bytes held at once. A request reserves its declared length before its body is read
 * and gives it back once its answer has gone; one that does not fit waits, first come first served, for at most
 * `maxWaitMs`, then is refused. Waiting requests hold almost nothing: their bodies stay in the socket (Node stops
 * reading a request nobody consumes).
 */
export interface ByteBudgetOptions {
  /** Bytes that may be reserved at once. A single reservation of up to this always fits when nothing is held. */
  bytes: number;
  /** How long a request may wait for room before it is refused. */
  maxWaitMs: number;
  /**
   * A request this small that fits goes ahead even while bigger ones wait: typical pods (~10 KiB) are answered in
   * a millisecond and must not queue behind a 6 MiB body. Default `bytes / 16`.
   */
  smallBytes?: number;
  /** Told the bytes held and the requests waiting after every change (for gauges). */
  onChange?: (held: number, waiting: number) => void;
}

/** Gives the bytes back; calling it again does nothing. */
export type Release = () => void;

interface Waiter {
  bytes: number;
  grant: (release: Release | undefined) => void;
  timer: NodeJS.Timeout;
}

export interface ByteBudget {
  /** Resolves with a release once `bytes` fit, or with `undefined` when `maxWaitMs` passed first. */
  reserve(bytes: number): Promise<Release | undefined>;
  /** Bytes reserved now. */
  held(): number;
  /** Requests waiting now. */
  waiting(): number;
}

export function createByteBudget(options: ByteBudgetOptions): ByteBudget {
  let held = 0;
  const queue: Waiter[] = [];

  const fits = (bytes: number): boolean => held === 0 || held + bytes <= options.bytes;
  const smallBytes = options.smallBytes ?? options.bytes / 16;
  const changed = (): void => options.onChange?.(held, queue.length);

  function take(bytes: number): Release {
    held += bytes;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      held -= bytes;
      admitWaiting();
      changed();
    };
  }

  // In order: a big request at the head is not overtaken by the other big ones behind it.
  function admitWaiting(): void {
    while (queue.length > 0 && fits(queue[0]!.bytes)) {
      const waiter = queue.shift()!;
      clearTimeout(waiter.timer);
      waiter.grant(take(waiter.bytes));
    }
  }

  return {
    reserve(bytes) {
      if ((queue.length === 0 || bytes <= smallBytes) && fits(bytes)) {
        const release = take(bytes);
        changed();
        return Promise.resolve(release);
      }
      return new Promise((resolve) => {
        const waiter: Waiter = {
          bytes,
          grant: resolve,
          timer: setTimeout(() => {
            queue.splice(queue.indexOf(waiter), 1);
            resolve(undefined);
            // The head may have been what blocked the others.
            admitWaiting();
            changed();
          }, options.maxWaitMs),
        };
        queue.push(waiter);
        changed();
      });
    },
    held: () => held,
    waiting: () => queue.length,
  };
}
