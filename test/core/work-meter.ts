/**
 * Measures work without a clock: how many times code touches the pod and how many elements its array methods walk.
 *
 * - The pod is wrapped in Proxies (lazily, one per object, so identity comparisons still hold) that count every
 *   property read, `in` check and descriptor look-up, and every key an enumeration returns.
 * - While metering, the Array methods that walk an array (includes, find, filter, map, spread and for…of through
 *   the iterator, …) add the array's length: `names.includes(x)` inside a loop over the containers is quadratic
 *   work on plain arrays the Proxies never see.
 *
 * Work is then compared for a pod of size N and one of size 8N: linear code stays near 8, quadratic nears 64.
 */

export interface Meter {
  count: number;
}

function isObject(value: unknown): value is object {
  return typeof value === 'object' && value !== null;
}

/** A deep, lazily built counting view of `root`. Writes go to the underlying object (none are expected). */
export function counted<T>(root: T, meter: Meter): T {
  const proxies = new WeakMap<object, object>();
  const wrap = (value: unknown): unknown => {
    if (!isObject(value)) return value;
    const known = proxies.get(value);
    if (known !== undefined) return known;
    const proxy = new Proxy(value, {
      get(target, key, receiver) {
        meter.count++;
        return wrap(Reflect.get(target, key, receiver));
      },
      has(target, key) {
        meter.count++;
        return Reflect.has(target, key);
      },
      getOwnPropertyDescriptor(target, key) {
        meter.count++;
        const descriptor = Reflect.getOwnPropertyDescriptor(target, key);
        if (descriptor !== undefined && 'value' in descriptor) descriptor.value = wrap(descriptor.value);
        return descriptor;
      },
      ownKeys(target) {
        const keys = Reflect.ownKeys(target);
        meter.count += keys.length + 1;
        return keys;
      },
    });
    proxies.set(value, proxy);
    return proxy;
  };
  return wrap(root) as T;
}

/** Array methods whose cost grows with the array they are called on. */
const WALKING_METHODS = [
  'includes',
  'indexOf',
  'lastIndexOf',
  'find',
  'findIndex',
  'findLast',
  'findLastIndex',
  'some',
  'every',
  'filter',
  'map',
  'flatMap',
  'forEach',
  'reduce',
  'reduceRight',
  'join',
  'slice',
  'concat',
  'entries',
  'keys',
  'values',
] as const;

type AnyFunction = (this: unknown[], ...args: unknown[]) => unknown;

function patchArrays(meter: Meter): () => void {
  const prototype = Array.prototype as unknown as Record<string | symbol, AnyFunction>;
  const originals = new Map<string | symbol, AnyFunction>();
  for (const name of [...WALKING_METHODS, Symbol.iterator] as const) {
    const original = prototype[name]!;
    originals.set(name, original);
    prototype[name] = function metered(this: unknown[], ...args: unknown[]): unknown {
      meter.count += this.length;
      return original.apply(this, args);
    };
  }
  // Map#forEach, not for…of: destructuring an entry would go through the patched iterator.
  return () => originals.forEach((original, name) => (prototype[name] = original));
}

/** Runs `work` with the array methods metered, then puts them back. */
export function meteringArrays<T>(meter: Meter, work: () => T): T {
  const restore = patchArrays(meter);
  try {
    return work();
  } finally {
    restore();
  }
}

/**
 * The same for work that awaits (the admission layer awaits its cluster facts). Whatever else runs on the event
 * loop meanwhile is metered too: callers keep the awaited values already resolved.
 */
export async function meteringArraysAsync<T>(meter: Meter, work: () => Promise<T>): Promise<T> {
  const restore = patchArrays(meter);
  try {
    return await work();
  } finally {
    restore();
  }
}

/** Work done by `run` on the pod `make(n)`: pod reads through a counting view plus array elements walked. */
export function workFor<P>(make: (n: number) => P, n: number, run: (pod: P) => unknown): number {
  const pod = make(n);
  const meter: Meter = { count: 0 };
  const view = counted(pod, meter);
  meteringArrays(meter, () => run(view));
  return meter.count;
}

export async function workForAsync<P>(make: (n: number) => P, n: number, run: (pod: P) => Promise<unknown>): Promise<number> {
  const pod = make(n);
  const meter: Meter = { count: 0 };
  const view = counted(pod, meter);
  await meteringArraysAsync(meter, () => run(view));
  return meter.count;
}
