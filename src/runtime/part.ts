/**
 * One running piece of the webhook (configuration source, certificate source, cluster facts, listeners, the
 * missed-pods auditor). The server is a list of parts composed in one place: started in order, ready when every
 * part is, closed in reverse order.
 */
export interface Part {
  /** For logs: `config`, `certificates`, `cluster`, `listeners`, `audit`. */
  readonly name: string;
  /** Resolves once the part runs; rejects (with nothing left running) when it cannot start. */
  start(): Promise<void>;
  /** Whether the part can do its job now (feeds /readyz). */
  ready(): boolean;
  /** Stops the part; idempotent; never rejects. */
  close(): Promise<void>;
  /** Re-reads what the part watches, now (SIGHUP). Never rejects. */
  reload?(): Promise<void>;
}
