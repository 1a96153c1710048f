/**
 * What an `/events` client asks for: which events (`ev=PREFIX[,PREFIX…]`), and which of
 * them to summarise (`thin=PREFIX[,PREFIX…]`, `thin_ms=N`) instead of sending each one —
 * per window of N ms, per event name, the last event and how many there were. Counts and
 * the latest event stay exact; a reader that draws a token moving 3,000 times a second
 * gets a few frames a second instead of 3,000. Pure: no timers, no I/O.
 *
 * @module
 */

/** Default window of a thinned stream, ms. */
export const THIN_DEFAULT_MS = 250;

/** Smallest and largest `thin_ms`. */
export const THIN_MS_RANGE: readonly [number, number] = [10, 60_000];

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
  return { prefixes, thin, thinMs };
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

/** One summary: the last event of a name in a window, its id, and how many there were. */
export interface ThinSummary<T> {
  /** Event name. */
  ev: string;
  /** Id of the last one. */
  id: number;
  /** The last one. */
  last: T;
  /** How many events of this name the window held (≥ 1). */
  count: number;
}

/**
 * One window of thinned events: `add` per event (a map update, nothing else), `take` at
 * the window's end gives one summary per event name in the order of their last ids.
 */
export class ThinWindow<T> {
  #byName = new Map<string, ThinSummary<T>>();

  /** Events held (distinct names). */
  get size(): number {
    return this.#byName.size;
  }

  /** Counts event `id` of name `ev`; it becomes that name's last. */
  add(ev: string, id: number, item: T): void {
    const s = this.#byName.get(ev);
    if (s) {
      s.id = id;
      s.last = item;
      s.count++;
    } else this.#byName.set(ev, { ev, id, last: item, count: 1 });
  }

  /** The window's summaries (by last id) and a fresh window. */
  take(): ThinSummary<T>[] {
    const out = [...this.#byName.values()].sort((a, b) => a.id - b.id);
    this.#byName.clear();
    return out;
  }
}
