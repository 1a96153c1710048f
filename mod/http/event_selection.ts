/**
 * What an `/events` client asks for: which events (`ev=PREFIX[,PREFIX…]`), and which of
 * them to thin (`thin=PREFIX[,PREFIX…]`, `thin_ms=N`, `thin_keep=K`): per window of N ms
 * and per event name, the first K events go out whole as they happen, and the rest are
 * only counted — at the window's end one summary carries the last of them and how many
 * there were. Counts and the latest event stay exact; at a human's pace every event goes
 * out whole, and a reader that draws a token moving 3,000 times a second gets a few frames
 * a second instead of 3,000. Pure: no timers, no I/O.
 *
 * @module
 */

/** Default window of a thinned stream, ms. */
export const THIN_DEFAULT_MS = 250;

/** Smallest and largest `thin_ms`. */
export const THIN_MS_RANGE: readonly [number, number] = [10, 60_000];

/** Largest `thin_keep`. */
export const THIN_KEEP_MAX = 10_000;

/** At most this many prefixes in `ev` or `thin`. */
const MAX_PREFIXES = 64;

/** An `/events` client's choice of events. */
export interface EventSelection {
  /** Event-name prefixes sent (empty: every event). */
  prefixes: readonly string[];
  /** Prefixes (among those sent) that are summarised per window instead. */
  thin: readonly string[];
  /** Window of the summaries, ms. */
  thinMs: number;
  /** Events of a thinned name sent whole in each window before the rest are counted. */
  thinKeep: number;
}

/** A bad `/events` query (the server answers 400 with the message). */
export class EventSelectionError extends Error {
  override name = "EventSelectionError";
  /** Machine-readable code. */
  readonly code = "bad_query";
}

function prefixList(value: string | null, what: string): string[] {
  if (value === null) return [];
  const list = value.split(",").map((p) => p.trim()).filter((p) => p.length > 0);
  if (list.length > MAX_PREFIXES) {
    throw new EventSelectionError(`Cannot read ${what}: more than ${MAX_PREFIXES} prefixes`);
  }
  return list;
}

/** Reads `ev`, `thin` and `thin_ms` of an `/events` query; throws {@linkcode EventSelectionError}. */
export function parseEventSelection(params: URLSearchParams): EventSelection {
  const prefixes = prefixList(params.get("ev"), "ev");
  const thin = prefixList(params.get("thin"), "thin");
  const raw = params.get("thin_ms");
  let thinMs = THIN_DEFAULT_MS;
  if (raw !== null) {
    thinMs = Number(raw);
    const [lo, hi] = THIN_MS_RANGE;
    if (!Number.isInteger(thinMs) || thinMs < lo || thinMs > hi) {
      throw new EventSelectionError(
        `Cannot read thin_ms: "${raw.slice(0, 40)}" is not an integer in ${lo}..${hi}`,
      );
    }
  }
  const keepRaw = params.get("thin_keep");
  let thinKeep = 0;
  if (keepRaw !== null) {
    thinKeep = Number(keepRaw);
    if (!Number.isInteger(thinKeep) || thinKeep < 0 || thinKeep > THIN_KEEP_MAX) {
      throw new EventSelectionError(
        `Cannot read thin_keep: "${keepRaw.slice(0, 40)}" is not an integer in 0..${THIN_KEEP_MAX}`,
      );
    }
  }
  return { prefixes, thin, thinMs, thinKeep };
}

function startsWithAny(ev: string, prefixes: readonly string[]): boolean {
  for (const p of prefixes) if (ev.startsWith(p)) return true;
  return false;
}

/** Whether the client wants event `ev` at all. */
export function selects(selection: EventSelection, ev: string): boolean {
  return selection.prefixes.length === 0 || startsWithAny(ev, selection.prefixes);
}

/** Whether event `ev` (one the client wants) is summarised rather than sent. */
export function thins(selection: EventSelection, ev: string): boolean {
  return selection.thin.length > 0 && startsWithAny(ev, selection.thin);
}

/** What a client does with events of one name: skip them, send them whole, or thin them. */
export type EventRoute = "skip" | "send" | "thin";

/** Most event names a {@linkcode RouteCache} remembers (names are few: the roles' own). */
const ROUTE_CACHE_MAX = 1024;

/**
 * The route of each event name under one selection, worked out once per name (the prefix
 * tests run on a name's first event only: a node emits the same few names all the time).
 */
export class RouteCache {
  readonly #selection: EventSelection;
  readonly #routes = new Map<string, EventRoute>();

  constructor(selection: EventSelection) {
    this.#selection = selection;
  }

  /** The route of events named `ev`. */
  route(ev: string): EventRoute {
    const known = this.#routes.get(ev);
    if (known !== undefined) return known;
    const r: EventRoute = !selects(this.#selection, ev)
      ? "skip"
      : thins(this.#selection, ev)
      ? "thin"
      : "send";
    if (this.#routes.size < ROUTE_CACHE_MAX) this.#routes.set(ev, r);
    return r;
  }
}

/** One summary: the last event of a name held in a window, its id, and how many were held. */
export interface ThinSummary<T> {
  /** Event name. */
  ev: string;
  /** Id of the last one. */
  id: number;
  /** The last one. */
  last: T;
  /** How many events of this name the window held back (≥ 1; those sent whole not counted). */
  count: number;
}

/**
 * One window of thinned events. `add` per event: the first `keep` of a name in the window
 * are to be sent whole (it returns true), the others are counted (a map update, nothing
 * else). `take` at the window's end gives one summary per name that had events held back,
 * in the order of their last ids, and starts a fresh window.
 */
export class ThinWindow<T> {
  #keep: number;
  /** Per name in this window: how many went out whole, and what was held back. */
  #names = new Map<string, { whole: number; held?: ThinSummary<T> }>();
  #heldNames = 0;

  constructor(keep = 0) {
    this.#keep = keep;
  }

  /** Names with events held back. */
  get size(): number {
    return this.#heldNames;
  }

  /** Counts event `id` of name `ev`: true when it goes out whole, else it is held back. */
  add(ev: string, id: number, item: T): boolean {
    let n = this.#names.get(ev);
    if (!n) this.#names.set(ev, n = { whole: 0 });
    if (n.whole < this.#keep) {
      n.whole++;
      return true;
    }
    const s = n.held;
    if (s) {
      s.id = id;
      s.last = item;
      s.count++;
    } else {
      n.held = { ev, id, last: item, count: 1 };
      this.#heldNames++;
    }
    return false;
  }

  /** The window's summaries (by last id), and a fresh window. */
  take(): ThinSummary<T>[] {
    const out: ThinSummary<T>[] = [];
    for (const n of this.#names.values()) if (n.held) out.push(n.held);
    this.#names.clear();
    this.#heldNames = 0;
    return out.sort((a, b) => a.id - b.id);
  }
}
