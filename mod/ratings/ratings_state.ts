/**
 * The value of a replica manager held in memory: movies, every rating cell with the
 * last-writer-wins version that wrote it, a per-user index and per-movie aggregates, so
 * every query is answered from memory. Pure, no I/O.
 *
 * Convergence: every write to a cell carries a version `(vsum, vtag)` — the total of the
 * update record's vector timestamp, then `origin/uid`. A write wins only over a smaller
 * version, so RMs that apply the same records in any order end with the same table. The
 * version grows along every causal chain (a record depends on everything its origin had
 * applied, so an update made after another was applied — by any client — has a larger
 * total); truly concurrent updates are ordered by origin, then id.
 *
 * @module
 */
import { cellKey, type Dataset, type Movie } from "./dataset.ts";

/** One (user, movie) cell: its rating (null when deleted) and the version that wrote it. */
export interface Cell {
  /** User id. */
  user: number;
  /** Movie id. */
  movie: number;
  /** Rating, or null after a delete (a tombstone that keeps its version). */
  rating: number | null;
  /** Unix seconds. */
  time: number;
  /** Version: total of the writing record's timestamp (0 for the initial dataset). */
  vsum: number;
  /** Version tie-break: `origin/uid` of the writing record ("" for the initial dataset). */
  vuid: string;
}

/** Whether version `(s1, u1)` is greater than `(s2, u2)`. */
export function versionGreater(s1: number, u1: string, s2: number, u2: string): boolean {
  return s1 > s2 || (s1 === s2 && u1 > u2);
}

/** The ratings table in memory with its indexes. */
export class RatingsState {
  /** Movies by id. */
  readonly movies = new Map<number, Movie>();
  #cells = new Map<number, Cell>();
  #byUser = new Map<number, Map<number, Cell>>();
  #agg = new Map<number, { sum: number; count: number }>();
  #live = 0;

  /** Live (non-deleted) ratings. */
  get size(): number {
    return this.#live;
  }

  /** Loads movies. */
  addMovies(movies: Iterable<Movie>): void {
    for (const m of movies) this.movies.set(m.id, m);
  }

  /** Loads a dataset (initial version). */
  static fromDataset(data: Dataset): RatingsState {
    const s = new RatingsState();
    s.addMovies(data.movies);
    for (const r of data.ratings) {
      s.load({ user: r.user, movie: r.movie, rating: r.rating, time: r.time, vsum: 0, vuid: "" });
    }
    return s;
  }

  /** Puts a cell as stored (no version check). */
  load(cell: Cell): void {
    this.#put(cell);
  }

  /** The cell of (user, movie), if it was ever written. */
  cell(user: number, movie: number): Cell | undefined {
    return this.#cells.get(cellKey(user, movie));
  }

  /** The live rating of (user, movie), or null. */
  rating(user: number, movie: number): number | null {
    return this.#cells.get(cellKey(user, movie))?.rating ?? null;
  }

  /** The average rating of `movie` and how many ratings it has. */
  average(movie: number): { average: number | null; count: number } {
    const a = this.#agg.get(movie);
    if (!a || a.count === 0) return { average: null, count: 0 };
    return { average: a.sum / a.count, count: a.count };
  }

  /** Every live rating of `user`, by movie id. */
  userRatings(user: number): Cell[] {
    const m = this.#byUser.get(user);
    if (!m) return [];
    return [...m.values()].filter((c) => c.rating !== null).sort((a, b) => a.movie - b.movie);
  }

  /**
   * Writes `rating` (null = delete) to (user, movie) if the version `(vsum, vuid)` is
   * greater than the cell's; returns the cell written, or undefined when the write lost.
   */
  write(
    user: number,
    movie: number,
    rating: number | null,
    time: number,
    vsum: number,
    vuid: string,
  ): Cell | undefined {
    const old = this.#cells.get(cellKey(user, movie));
    if (old && !versionGreater(vsum, vuid, old.vsum, old.vuid)) return undefined;
    const cell: Cell = { user, movie, rating, time, vsum, vuid };
    this.#put(cell);
    return cell;
  }

  /** Every cell (live and deleted). */
  cells(): IterableIterator<Cell> {
    return this.#cells.values();
  }

  #put(cell: Cell): void {
    const key = cellKey(cell.user, cell.movie);
    const old = this.#cells.get(key);
    if (old?.rating != null) {
      const a = this.#agg.get(old.movie)!;
      a.sum -= old.rating;
      a.count--;
      this.#live--;
    }
    this.#cells.set(key, cell);
    let u = this.#byUser.get(cell.user);
    if (!u) this.#byUser.set(cell.user, u = new Map());
    u.set(cell.movie, cell);
    if (cell.rating != null) {
      let a = this.#agg.get(cell.movie);
      if (!a) this.#agg.set(cell.movie, a = { sum: 0, count: 0 });
      a.sum += cell.rating;
      a.count++;
      this.#live++;
    }
  }
}
