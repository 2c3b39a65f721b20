// Channel history in a Durable Object's SQLite storage: it survives hibernation and
// eviction, so a client that reconnects to the same object recovers what it missed.
import { newEpoch, recoveryOf, stampedFrame } from "../../src/adapter.ts";
import type {
  HistoryOptions,
  LocalHistoryStore,
  Recovery,
  StreamPosition,
} from "../../src/index.ts";

/** How often, at most, streams whose history expired are looked for and dropped. */
const SWEEP_INTERVAL_MS = 60_000;

/**
 * A local history store over `ctx.storage.sql` (objects declared with
 * `new_sqlite_classes`): synchronous, like the memory store, so a broadcast is stamped as
 * it is delivered.
 */
export class SqlHistory implements LocalHistoryStore {
  readonly shared = false;
  readonly #sql: SqlStorage;
  #ready = false;
  #swept = 0;

  constructor(sql: SqlStorage) {
    this.#sql = sql;
  }

  append(channel: string, frame: string, options: HistoryOptions): string {
    const now = Date.now();
    this.#prepare(now);
    const { epoch, top } = this.#meta(channel, options, now);
    const offset = top + 1;
    const stamped = stampedFrame(frame, offset, epoch);
    const sql = this.#sql;
    sql.exec(
      "UPDATE socketapi_streams SET top = ?, touched = ?, ttl = ? WHERE channel = ?",
      offset,
      now,
      options.ttl,
      channel,
    );
    sql.exec(
      "INSERT INTO socketapi_history (channel, seq, frame, at) VALUES (?, ?, ?, ?)",
      channel,
      offset,
      stamped,
      now,
    );
    sql.exec(
      "DELETE FROM socketapi_history WHERE channel = ? AND (seq <= ? OR at <= ?)",
      channel,
      offset - options.size,
      now - options.ttl,
    );
    return stamped;
  }

  recover(
    channel: string,
    since: StreamPosition | undefined,
    options: HistoryOptions,
    maxBytes: number,
  ): Recovery {
    const now = Date.now();
    this.#prepare(now);
    const { epoch, top } = this.#meta(channel, options, now);
    return recoveryOf({ offset: top, epoch }, since, maxBytes, () => {
      const rows = this.#sql
        .exec<{ seq: number; frame: string }>(
          "SELECT seq, frame FROM socketapi_history WHERE channel = ? AND seq > ? AND at > ? ORDER BY seq LIMIT ?",
          channel,
          since?.offset ?? 0,
          now - options.ttl,
          options.size,
        )
        .toArray();
      return { first: rows[0]?.seq, frames: rows.map((row) => row.frame) };
    });
  }

  forget(channel: string): void {
    this.#prepare(Date.now());
    this.#sql.exec("DELETE FROM socketapi_streams WHERE channel = ?", channel);
    this.#sql.exec("DELETE FROM socketapi_history WHERE channel = ?", channel);
  }

  /** The stream's epoch and last offset, made when it has none. */
  #meta(channel: string, options: HistoryOptions, now: number): { epoch: string; top: number } {
    const row = this.#sql
      .exec<{ epoch: string; top: number }>(
        "SELECT epoch, top FROM socketapi_streams WHERE channel = ?",
        channel,
      )
      .toArray()[0];
    if (row) return row;
    const epoch = newEpoch();
    this.#sql.exec(
      "INSERT INTO socketapi_streams (channel, epoch, top, touched, ttl) VALUES (?, ?, 0, ?, ?)",
      channel,
      epoch,
      now,
      options.ttl,
    );
    // Rows of an earlier stream of this name (dropped by a sweep) belong to no epoch now.
    this.#sql.exec("DELETE FROM socketapi_history WHERE channel = ?", channel);
    return { epoch, top: 0 };
  }

  /** Makes the tables once; drops streams with nothing new for their ttl now and then. */
  #prepare(now: number): void {
    const sql = this.#sql;
    if (!this.#ready) {
      sql.exec(
        "CREATE TABLE IF NOT EXISTS socketapi_streams (channel TEXT PRIMARY KEY, epoch TEXT NOT NULL, top INTEGER NOT NULL, touched INTEGER NOT NULL, ttl INTEGER NOT NULL)",
      );
      sql.exec(
        "CREATE TABLE IF NOT EXISTS socketapi_history (channel TEXT NOT NULL, seq INTEGER NOT NULL, frame TEXT NOT NULL, at INTEGER NOT NULL, PRIMARY KEY (channel, seq))",
      );
      this.#ready = true;
    }
    if (now - this.#swept < SWEEP_INTERVAL_MS) return;
    this.#swept = now;
    sql.exec(
      "DELETE FROM socketapi_history WHERE channel IN (SELECT channel FROM socketapi_streams WHERE touched + ttl <= ?)",
      now,
    );
    sql.exec("DELETE FROM socketapi_streams WHERE touched + ttl <= ?", now);
  }
}
