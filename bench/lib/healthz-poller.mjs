/**
 * Polls a server's /healthz every `intervalMs` on its own keep-alive TLS connection, in a worker thread: the main
 * thread may be busy building or reading megabytes while the server is measured, and that must not show up as
 * the server's delay. `worstWait(from, to)` is the longest a /healthz request overlapping that window waited
 * (one still in flight counts with its wait so far). Times are `performance.timeOrigin + performance.now()`, so
 * both threads share them.
 */
import { Agent, request } from 'node:https';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';

const now = () => performance.timeOrigin + performance.now();

export class HealthzPoller {
  /** @param {{port: number, ca: Buffer, intervalMs?: number}} options */
  constructor({ port, ca, intervalMs = 10 }) {
    this.worker = new Worker(new URL(import.meta.url), { workerData: { port, ca, intervalMs } });
    this.pending = new Map();
    this.next = 0;
    this.worker.on('message', (message) => {
      const resolve = this.pending.get(message.id);
      this.pending.delete(message.id);
      resolve?.(message);
    });
  }

  ask(message) {
    const id = this.next++;
    return new Promise((resolve) => {
      this.pending.set(id, resolve);
      this.worker.postMessage({ ...message, id });
    });
  }

  /** Resolves once the first poll has been answered (the connection is up). */
  ready() {
    return this.ask({ type: 'ready' });
  }

  /** {worstMs, polls, failures} over the window. */
  worstWait(from, to) {
    return this.ask({ type: 'window', from, to });
  }

  async close() {
    await this.ask({ type: 'stop' });
    await this.worker.terminate();
  }
}

export { now as sharedNow };

function poll() {
  const { port, ca, intervalMs } = workerData;
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  /** Finished polls: [start, end]; the one in flight: its start. */
  const polls = [];
  let failures = [];
  let inFlightSince;
  let stopped = false;
  const readyWaiters = [];

  const once = () =>
    new Promise((resolve) => {
      inFlightSince = now();
      const started = inFlightSince;
      const req = request({ host: '127.0.0.1', port, path: '/healthz', ca, agent }, (res) => {
        res.resume();
        res.on('end', () => {
          polls.push([started, now()]);
          if (res.statusCode !== 200) failures.push([started, `HTTP ${res.statusCode}`]);
          resolve();
        });
      });
      req.setTimeout(30_000, () => req.destroy(new Error('no answer in 30 s')));
      req.on('error', (err) => {
        polls.push([started, now()]);
        failures.push([started, err.message]);
        resolve();
      });
      req.end();
    }).finally(() => {
      inFlightSince = undefined;
    });

  const loop = async () => {
    while (!stopped) {
      await once();
      for (const resolve of readyWaiters.splice(0)) resolve();
      await new Promise((resolve) => setTimeout(resolve, intervalMs));
    }
    agent.destroy();
  };

  parentPort.on('message', async (message) => {
    if (message.type === 'ready') {
      if (polls.length === 0) await new Promise((resolve) => readyWaiters.push(resolve));
      parentPort.postMessage({ id: message.id });
    } else if (message.type === 'window') {
      const { from, to } = message;
      let worstMs = 0;
      let count = 0;
      for (const [start, end] of polls) {
        if (end < from || start > to) continue;
        count++;
        worstMs = Math.max(worstMs, end - start);
      }
      if (inFlightSince !== undefined) worstMs = Math.max(worstMs, now() - inFlightSince);
      const failed = failures.filter(([start]) => start >= from && start <= to).map(([, why]) => why);
      // Keep memory flat over a long run: what ended before this window is never asked for again.
      polls.splice(0, polls.findIndex(([, end]) => end >= from) >>> 0);
      failures = failures.filter(([start]) => start > to);
      parentPort.postMessage({ id: message.id, worstMs, polls: count, failures: failed });
    } else if (message.type === 'stop') {
      stopped = true;
      parentPort.postMessage({ id: message.id });
    }
  });
  void loop();
}

if (!isMainThread && workerData?.port !== undefined) poll();
