/**
 * Messages of the ratings service (protocol version 1 of the frame layer).
 * {@linkcode RATINGS_FRAMES} lists every frame with its fields: it is the table in
 * docs/ratings.md (tests/protocol_docs_test.ts compares the two), and the replica's and the
 * front end's handler maps are checked against it by the type checker
 * ({@linkcode RmRequest}, {@linkcode FeRequest}).
 *
 * @module
 */
import {
  ErrorCode,
  fieldInt,
  fieldString,
  type FrameSpec,
  type Message,
  ProtocolError,
} from "../wire/mod.ts";
import { isValidRating, MAX_MOVIE_ID, MAX_USER_ID } from "./dataset.ts";
import type { LogRecord, RatingOp, UpdateKind } from "./update_log.ts";
import { parseVectorTs, type VectorTs } from "./vector_ts.ts";

/** Every frame of the ratings service. */
export const RATINGS_FRAMES = [
  {
    t: "ratings.query",
    route: "client → FE, FE → RM",
    fields: "user, q, movie?, prev",
    reply: "ratings.result {q, ts, …}",
    note: "`q`: `average` → `{movie, title, average, count}`, `get` → `{movie, title, rating}`, " +
      "`all` → `{ratings: [{movie, title, rating}]}`; `prev`: the client's timestamp",
  },
  {
    t: "ratings.update",
    route: "client → FE, FE → RM",
    fields: "user, kind, movie, rating?, uid?, time?, prev, f?",
    reply: "ratings.updated {kind, movie, title, rating, uid, ts}",
    note: "`kind`: create, update or delete; `uid` makes a retry idempotent; `f`: copies needed",
  },
  {
    t: "rm.ping",
    route: "FE → RM",
    fields: "",
    reply: "rm.pong {status, ts}",
    note: "an FE's health check (status ACTIVE, OVERLOADED or OFFLINE)",
  },
  {
    t: "rm.gossip",
    route: "RM → RM",
    fields: "from, addr, ts, records, push?",
    reply: "rm.gossip.ok {from, ts, records}",
    note: "both sides merge the other's records and learn its replica timestamp",
  },
  {
    t: "rm.snapshot",
    route: "RM → RM",
    fields: "from, value_ts, cells, executed",
    reply: "rm.snapshot.ok {ts}",
    note: "state transfer to an RM that needs records already garbage-collected everywhere else",
  },
] as const satisfies readonly FrameSpec[];

/** The frame types a replica manager handles (its handler map must have exactly these). */
export type RmRequest = (typeof RATINGS_FRAMES)[number]["t"];

/** The frame types a front end handles (those a client sends it). */
export type FeRequest = Extract<
  (typeof RATINGS_FRAMES)[number],
  { route: `client → FE${string}` }
>["t"];

/** The query kinds. */
export const QUERY_KINDS = ["average", "get", "all"] as const;
/** One query kind. */
export type QueryKind = (typeof QUERY_KINDS)[number];
/** The update kinds. */
export const UPDATE_KINDS: readonly UpdateKind[] = ["create", "update", "delete"];

/** RM statuses as FEs see them. */
export type RmStatus = "ACTIVE" | "OVERLOADED" | "OFFLINE";

/** Most records in one gossip frame. */
export const GOSSIP_BATCH = 4_000;

/** Reads a `prev`/`ts` field as a vector timestamp, or throws `bad_field`. */
export function fieldTs(msg: Message, field: string): VectorTs {
  const ts = parseVectorTs(msg[field]);
  if (!ts) {
    throw new ProtocolError(
      ErrorCode.BadField,
      `Cannot accept ${msg.t}: field ${field} must be a map of RM names to counters`,
      { field },
    );
  }
  return ts;
}

/** Reads the user id. */
export function fieldUser(msg: Message): number {
  return fieldInt(msg, "user", { min: 1, max: MAX_USER_ID });
}

/** Reads the movie id. */
export function fieldMovie(msg: Message): number {
  return fieldInt(msg, "movie", { min: 1, max: MAX_MOVIE_ID });
}

/** Reads a query kind. */
export function fieldQuery(msg: Message): QueryKind {
  const q = fieldString(msg, "q", { maxLength: 16 });
  if (!(QUERY_KINDS as readonly string[]).includes(q)) {
    throw new ProtocolError(
      ErrorCode.UnknownCommand,
      `Cannot run query "${q}": queries are ${QUERY_KINDS.join(", ")}`,
      { field: "q" },
    );
  }
  return q as QueryKind;
}

/** Reads a rating field: a number 0.5..5.0 in 0.5 steps. */
export function fieldRating(msg: Message): number {
  const v = msg.rating;
  if (typeof v !== "number" || !isValidRating(v)) {
    throw new ProtocolError(
      ErrorCode.BadField,
      `Cannot accept rating ${
        typeof v === "number" ? v : JSON.stringify(v) ?? "(missing)"
      }: ratings are 0.5..5.0 in steps of 0.5`,
      { field: "rating" },
    );
  }
  return v;
}

/** Reads an update request into its operation (uid and time may be absent). */
export function readUpdate(msg: Message): { op: RatingOp; uid?: string } {
  const kind = fieldString(msg, "kind", { maxLength: 16 });
  if (!(UPDATE_KINDS as readonly string[]).includes(kind)) {
    throw new ProtocolError(
      ErrorCode.UnknownCommand,
      `Cannot run update "${kind}": updates are ${UPDATE_KINDS.join(", ")}`,
      { field: "kind" },
    );
  }
  const user = fieldUser(msg);
  const movie = fieldMovie(msg);
  const rating = kind === "delete" ? null : fieldRating(msg);
  let uid: string | undefined;
  if (msg.uid !== undefined && msg.uid !== null) {
    uid = fieldString(msg, "uid", { maxLength: 80 });
  }
  const time = msg.time === undefined || msg.time === null
    ? Math.floor(Date.now() / 1000)
    : fieldInt(msg, "time", { min: 0, max: 1e11 });
  return {
    op: { kind: kind as UpdateKind, user, movie, rating, time, prev: fieldTs(msg, "prev") },
    uid,
  };
}

/** Reads log records from a gossip frame; throws `bad_field` on a malformed one. */
export function readRecords(msg: Message): LogRecord[] {
  const raw = msg.records ?? [];
  if (!Array.isArray(raw)) {
    throw new ProtocolError(ErrorCode.BadField, `Cannot accept ${msg.t}: records must be an array`);
  }
  return raw.map((r, i) => {
    const bad = (why: string) =>
      new ProtocolError(ErrorCode.BadField, `Cannot accept ${msg.t}: records[${i}]: ${why}`);
    if (r === null || typeof r !== "object" || Array.isArray(r)) throw bad("must be a map");
    const rec = r as Record<string, unknown>;
    if (typeof rec.origin !== "string" || rec.origin.length === 0) throw bad("origin");
    if (typeof rec.uid !== "string") throw bad("uid");
    const ts = parseVectorTs(rec.ts);
    if (!ts || !(ts[rec.origin] > 0)) throw bad("ts");
    const op = rec.op as Record<string, unknown> | undefined;
    if (!op || typeof op !== "object") throw bad("op");
    const prev = parseVectorTs(op.prev);
    if (
      !prev || !(UPDATE_KINDS as readonly unknown[]).includes(op.kind) ||
      typeof op.user !== "number" || typeof op.movie !== "number" ||
      typeof op.time !== "number" ||
      !(op.rating === null || (typeof op.rating === "number" && isValidRating(op.rating)))
    ) throw bad("op fields");
    return {
      origin: rec.origin,
      ts,
      uid: rec.uid,
      op: {
        kind: op.kind as UpdateKind,
        user: op.user,
        movie: op.movie,
        rating: op.rating as number | null,
        time: op.time,
        prev,
      },
    };
  });
}
