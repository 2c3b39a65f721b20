// Channel history in a Durable Object's SQLite storage: it survives hibernation and
// eviction, so a client that reconnects to the same object recovers what it missed.
import {
  bucketOf,
  DEFAULT_HISTORY_BYTES,
  emptyEpoch,
  newEpoch,
  recoveryOfStream,
  stampedFrame,
  utf8ByteLength,
} from "../../src/adapter.ts";
import type {
  HistoryOptions,
  Latest,
  LocalHistoryStore,
  Recovery,
  StreamPosition,
} from "../../src/index.ts";

/** How often, at most, streams whose history expired are looked for and dropped. */
const SWEEP_INTERVAL_MS = 60_000;

/** A stream's row. */
type StreamRow = {
  epoch: string;
  top: number;
  touched: number;
  ttl: number;
  created: number;
  bytes: number;
};

/**
 * A local history store over `ctx.storage.sql` (objects declared with
 * `new_sqlite_classes`): synchronous, like the memory store, so a broadcast is stamped as
 * it is delivered. A stream is made by its first broadcast: a subscribe to a channel
 * nothing was broadcast on writes nothing. A stream whose ttl passed with nothing new is
 * gone when it is next read, whether or not the sweep ran.
 */
export class SqlHistory implements LocalHistoryStore {
  readonly shared = false;
  readonly #sql: SqlStorage;
  #ready = false;
  #swept = 0;
  /** This object's store among others, kept in storage with the generations. */
  #id = "";

  constructor(sql: SqlStorage) {
    this.#sql = sql;
  }

  append(channel: string, frame: string, options: HistoryOptions): string {
    const now = Date.now();
    this.#prepare(now);
    const sql = this.#sql;
    let stream = this.#live(channel, now);
    if (!stream) {
      stream = {
        epoch: newEpoch(),
        top: 0,
        touched: now,
        ttl: options.ttl,
        created: now,
        bytes: 0,
      };
      // Rows of an earlier stream of this name belong to no epoch now.
      sql.exec("DELETE FROM socketapi_history WHERE channel = ?", channel);
      sql.exec(
        "INSERT INTO socketapi_streams (channel, epoch, top, touched, ttl, created, bytes) VALUES (?, ?, 0, ?, ?, ?, 0)",
        channel,
        stream.epoch,
        now,
        options.ttl,
        now,
      );
    }
    const offset = stream.top + 1;
    const stamped = stampedFrame(frame, offset, stream.epoch);
    // Bytes in UTF-8, as SQLite counts a blob; a stream kept before bytes were counted is
    // counted once.
    let bytes = stream.bytes === 0 && stream.top > 0 ? this.#bytesOf(channel) : stream.bytes;
    sql.exec(
      "INSERT INTO socketapi_history (channel, seq, frame, at) VALUES (?, ?, ?, ?)",
      channel,
      offset,
      stamped,
      now,
    );
    bytes += utf8ByteLength(stamped);
    const beyond = [channel, offset - options.size, now - options.ttl] as const;
    bytes -= sql
      .exec<{ bytes: number }>(
        "SELECT COALESCE(SUM(length(CAST(frame AS BLOB))), 0) AS bytes FROM socketapi_history WHERE channel = ? AND (seq <= ? OR at <= ?)",
        ...beyond,
      )
      .one().bytes;
    sql.exec(
      "DELETE FROM socketapi_history WHERE channel = ? AND (seq <= ? OR at <= ?)",
      ...beyond,
    );
    // Past the channel's bytes, its oldest broadcasts go.
    const maxBytes = options.maxBytes ?? DEFAULT_HISTORY_BYTES;
    while (bytes > maxBytes) {
      const oldest = sql
        .exec<{ seq: number; bytes: number }>(
          "SELECT seq, length(CAST(frame AS BLOB)) AS bytes FROM socketapi_history WHERE channel = ? ORDER BY seq LIMIT 1",
          channel,
        )
        .toArray()[0];
      if (!oldest) break;
      sql.exec("DELETE FROM socketapi_history WHERE channel = ? AND seq = ?", channel, oldest.seq);
      bytes -= oldest.bytes;
    }
    sql.exec(
      "UPDATE socketapi_streams SET top = ?, touched = ?, ttl = ?, bytes = ? WHERE channel = ?",
      offset,
      now,
      options.ttl,
      bytes,
      channel,
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
    const stream = this.#live(channel, now);
    const { size, ttl } = options;
    return recoveryOfStream(
      stream,
      since,
      { tag: this.#tag(channel), now, ttl, size, maxBytes },
      () => {
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
      },
    );
  }

  latest(channel: string, count: number, options: HistoryOptions): Latest {
    const now = Date.now();
    this.#prepare(now);
    const stream = this.#live(channel, now);
    if (!stream) {
      return { position: { offset: 0, epoch: emptyEpoch(this.#tag(channel), now) }, frames: [] };
    }
    const rows = this.#sql
      .exec<{ frame: string }>(
        "SELECT frame FROM socketapi_history WHERE channel = ? AND at > ? ORDER BY seq DESC LIMIT ?",
        channel,
        now - options.ttl,
        Math.max(0, count),
      )
      .toArray();
    return {
      position: { offset: stream.top, epoch: stream.epoch },
      frames: rows.reverse().map((row) => row.frame),
    };
  }

  forget(channel: string): void {
    this.#prepare(Date.now());
    this.#remove(channel);
    // Its empty positions given so far are refused: broadcasts may be missed from now on.
    this.#sql.exec(
      "INSERT INTO socketapi_history_state (key, value) VALUES (?, '1') " +
        "ON CONFLICT (key) DO UPDATE SET value = CAST(value AS INTEGER) + 1",
      `g${bucketOf(channel)}`,
    );
  }

  holds(channel: string): boolean {
    const now = Date.now();
    this.#prepare(now);
    return this.#live(channel, now) !== undefined;
  }

  /** What this store's empty positions of `channel` carry: its id and the name's generation. */
  #tag(channel: string): string {
    const row = this.#sql
      .exec<{ value: string }>(
        "SELECT value FROM socketapi_history_state WHERE key = ?",
        `g${bucketOf(channel)}`,
      )
      .toArray()[0];
    return `${this.#id}${Number(row?.value ?? 0).toString(36)}`;
  }

  /** The channel's stream, unless its ttl passed with nothing new (then it is dropped). */
  #live(channel: string, now: number): StreamRow | undefined {
    const row = this.#sql
      .exec<StreamRow>(
        "SELECT epoch, top, touched, ttl, created, bytes FROM socketapi_streams WHERE channel = ?",
        channel,
      )
      .toArray()[0];
    if (row && row.touched + row.ttl <= now) {
      this.#remove(channel);
      return undefined;
    }
    return row;
  }

  #remove(channel: string): void {
    this.#sql.exec("DELETE FROM socketapi_streams WHERE channel = ?", channel);
    this.#sql.exec("DELETE FROM socketapi_history WHERE channel = ?", channel);
  }

  #bytesOf(channel: string): number {
    return this.#sql
      .exec<{ bytes: number }>(
        "SELECT COALESCE(SUM(length(CAST(frame AS BLOB))), 0) AS bytes FROM socketapi_history WHERE channel = ?",
        channel,
      )
      .one().bytes;
  }

  /** Makes the tables once; drops streams with nothing new for their ttl now and then. */
  #prepare(now: number): void {
    const sql = this.#sql;
    if (!this.#ready) {
      sql.exec(
        "CREATE TABLE IF NOT EXISTS socketapi_streams (channel TEXT PRIMARY KEY, epoch TEXT NOT NULL, top INTEGER NOT NULL, touched INTEGER NOT NULL, ttl INTEGER NOT NULL)",
      );
      // Added after the first release: a table made before has neither column.
      const columns = new Set(
        sql
          .exec<{ name: string }>("SELECT name FROM pragma_table_info('socketapi_streams')")
          .toArray()
          .map((column) => column.name),
      );
      if (!columns.has("created")) {
        sql.exec("ALTER TABLE socketapi_streams ADD COLUMN created INTEGER NOT NULL DEFAULT 0");
      }
      if (!columns.has("bytes")) {
        sql.exec("ALTER TABLE socketapi_streams ADD COLUMN bytes INTEGER NOT NULL DEFAULT 0");
      }
      sql.exec(
        "CREATE TABLE IF NOT EXISTS socketapi_history (channel TEXT NOT NULL, seq INTEGER NOT NULL, frame TEXT NOT NULL, at INTEGER NOT NULL, PRIMARY KEY (channel, seq))",
      );
      sql.exec(
        "CREATE TABLE IF NOT EXISTS socketapi_history_state (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
      );
      sql.exec(
        "INSERT OR IGNORE INTO socketapi_history_state (key, value) VALUES ('id', ?)",
        newEpoch().slice(0, 8),
      );
      this.#id = sql
        .exec<{ value: string }>("SELECT value FROM socketapi_history_state WHERE key = 'id'")
        .one().value;
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
