/**
 * The ratings dataset: a deterministic synthetic set in the MovieLens "small" shape, and
 * reading/writing the MovieLens CSV files (`movies.csv`: movieId,title,genres;
 * `ratings.csv`: userId,movieId,rating,timestamp).
 *
 * @module
 */
import { seededRandom } from "../random/mod.ts";

/** One movie. */
export interface Movie {
  /** Movie id. */
  id: number;
  /** Title with year, e.g. `Toy Story (1995)`. */
  title: string;
  /** Genres separated by `|`. */
  genres: string;
}

/** One rating. */
export interface Rating {
  /** User id. */
  user: number;
  /** Movie id. */
  movie: number;
  /** 0.5..5.0 in 0.5 steps. */
  rating: number;
  /** Unix seconds. */
  time: number;
}

/** A whole dataset. */
export interface Dataset {
  /** Movies. */
  movies: Movie[];
  /** Ratings, at most one per (user, movie). */
  ratings: Rating[];
}

/** Options of {@linkcode generateDataset}. */
export interface GenerateOptions {
  /** PRNG seed. @default {42} */
  seed?: number;
  /** Users. @default {610} */
  users?: number;
  /** Movies. @default {9700} */
  movies?: number;
  /** Ratings. @default {100000} */
  ratings?: number;
}

/** The seed used when an RM starts without `--dataset`. */
export const DEFAULT_SEED = 42;

/** The smallest and largest rating. */
export const RATING_MIN = 0.5;
/** The largest rating. */
export const RATING_MAX = 5.0;

/** Whether `r` is a valid rating: 0.5..5.0 in 0.5 steps. */
export function isValidRating(r: number): boolean {
  return Number.isFinite(r) && r >= RATING_MIN && r <= RATING_MAX && Number.isInteger(r * 2);
}

const GENRES = [
  "Action",
  "Adventure",
  "Animation",
  "Children",
  "Comedy",
  "Crime",
  "Documentary",
  "Drama",
  "Fantasy",
  "Film-Noir",
  "Horror",
  "IMAX",
  "Musical",
  "Mystery",
  "Romance",
  "Sci-Fi",
  "Thriller",
  "War",
  "Western",
];
const ADJECTIVES = [
  "Silent",
  "Last",
  "Broken",
  "Golden",
  "Hidden",
  "Lost",
  "Midnight",
  "Crimson",
  "Wild",
  "Forgotten",
  "Electric",
  "Frozen",
  "Secret",
  "Burning",
  "Lonely",
  "Little",
  "Dark",
  "Brave",
  "Strange",
  "Endless",
  "Distant",
  "Sweet",
  "Iron",
  "Paper",
];
const NOUNS = [
  "River",
  "Kingdom",
  "Summer",
  "Detective",
  "Garden",
  "Machine",
  "Harbor",
  "Empire",
  "Letter",
  "Circus",
  "Mountain",
  "Stranger",
  "Island",
  "Orchestra",
  "Planet",
  "Highway",
  "Mirror",
  "Winter",
  "Station",
  "Dragon",
  "City",
  "Promise",
  "Storm",
  "Voyage",
  "Castle",
  "Shadow",
  "Heart",
  "Engine",
];
const SUFFIXES = ["", "", "", "", " II", " Returns", ", The", ": Part One", " of Fire", " Forever"];

/**
 * Generates the synthetic dataset: Zipf-like movie popularity, a heavy-tailed number of
 * ratings per user (at least 20 each, like MovieLens), ratings centred near 3.5 with a
 * per-movie quality and per-user bias, 0.5 steps, timestamps 1996–2018. The same options
 * always give the same dataset.
 */
export function generateDataset(options: GenerateOptions = {}): Dataset {
  const seed = options.seed ?? DEFAULT_SEED;
  const nUsers = Math.max(1, options.users ?? 610);
  const nMovies = Math.max(1, options.movies ?? 9700);
  const want = Math.max(0, Math.min(options.ratings ?? 100_000, nUsers * nMovies));
  const rand = seededRandom(seed);
  const movies: Movie[] = [];
  const quality: number[] = [];
  let id = 0;
  for (let i = 0; i < nMovies; i++) {
    id += 1 + (rand() < 0.15 ? Math.floor(rand() * 8) : 0);
    const year = 1920 + Math.floor(Math.pow(rand(), 0.5) * 99);
    const title = `${ADJECTIVES[Math.floor(rand() * ADJECTIVES.length)]} ${
      NOUNS[Math.floor(rand() * NOUNS.length)]
    }${SUFFIXES[Math.floor(rand() * SUFFIXES.length)]} (${year})`;
    const g = new Set<string>();
    const ng = 1 + Math.floor(rand() * rand() * 4);
    while (g.size < ng) g.add(GENRES[Math.floor(rand() * GENRES.length)]);
    movies.push({ id, title, genres: [...g].sort().join("|") });
    quality.push((rand() + rand() + rand()) / 3 * 2 - 1);
  }
  // Popularity: Zipf with exponent ~0.9 over a shuffled order of the movies.
  const order = movies.map((_, i) => i);
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  const cdf = new Float64Array(nMovies);
  let acc = 0;
  for (let k = 0; k < nMovies; k++) {
    acc += 1 / Math.pow(k + 1, 0.9);
    cdf[k] = acc;
  }
  const pickMovie = (): number => {
    const x = rand() * acc;
    let lo = 0, hi = nMovies - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (cdf[mid] < x) lo = mid + 1;
      else hi = mid;
    }
    return order[lo];
  };
  // Ratings per user: heavy-tailed weights, at least min(20, nMovies) each.
  const floor = Math.min(20, nMovies, Math.floor(want / nUsers));
  const weights: number[] = [];
  for (let u = 0; u < nUsers; u++) weights.push(Math.pow(rand(), -0.9));
  const wsum = weights.reduce((a, b) => a + b, 0);
  const spare = want - floor * nUsers;
  const counts = weights.map((w) => Math.min(nMovies, floor + Math.floor((w / wsum) * spare)));
  let left = want - counts.reduce((a, b) => a + b, 0);
  for (let u = 0; left > 0 && u < nUsers * nMovies; u++) {
    const i = u % nUsers;
    if (counts[i] < nMovies) {
      counts[i]++;
      left--;
    }
  }
  const ratings: Rating[] = [];
  for (let u = 0; u < nUsers; u++) {
    const bias = (rand() - 0.5) * 1.2;
    const start = 820_454_400 + Math.floor(rand() * 700_000_000);
    const seen = new Set<number>();
    const n = counts[u];
    let guard = 0;
    while (seen.size < n && guard++ < n * 50) {
      const m = seen.size < n / 2 || nMovies > 4 * n ? pickMovie() : Math.floor(rand() * nMovies);
      if (seen.has(m)) continue;
      seen.add(m);
      const raw = 3.5 + bias + quality[m] * 1.2 + (rand() - 0.5) * 1.6;
      const r = Math.min(5, Math.max(0.5, Math.round(raw * 2) / 2));
      ratings.push({
        user: u + 1,
        movie: movies[m].id,
        rating: r,
        time: start + Math.floor(rand() * 60_000_000),
      });
    }
  }
  return { movies, ratings };
}

/** Splits one CSV line (RFC 4180 quoting) into fields. */
export function parseCsvLine(line: string): string[] {
  if (!line.includes('"')) return line.split(",");
  const out: string[] = [];
  let i = 0;
  while (i <= line.length) {
    if (line[i] === '"') {
      let s = "";
      i++;
      for (;;) {
        const q = line.indexOf('"', i);
        if (q < 0) throw new Error("unterminated quoted field");
        s += line.slice(i, q);
        if (line[q + 1] === '"') {
          s += '"';
          i = q + 2;
        } else {
          i = q + 1;
          break;
        }
      }
      out.push(s);
      if (i < line.length && line[i] !== ",") throw new Error("text after a quoted field");
      i++;
    } else {
      const c = line.indexOf(",", i);
      const end = c < 0 ? line.length : c;
      out.push(line.slice(i, end));
      i = end + 1;
    }
  }
  return out;
}

function csvField(s: string): string {
  return /[",\n\r]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

/** The `movies.csv` text of `movies`. */
export function moviesCsv(movies: Movie[]): string {
  return "movieId,title,genres\n" +
    movies.map((m) => `${m.id},${csvField(m.title)},${csvField(m.genres)}\n`).join("");
}

/** The `ratings.csv` text of `ratings`. */
export function ratingsCsv(ratings: Rating[]): string {
  return "userId,movieId,rating,timestamp\n" +
    ratings.map((r) => `${r.user},${r.movie},${r.rating.toFixed(1)},${r.time}\n`).join("");
}

/** A dataset file is unusable; the message names the file and the line. */
export class DatasetError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "DatasetError";
  }
}

function lines(text: string): string[] {
  return text.split(/\r?\n/);
}

function intField(s: string, file: string, line: number, what: string): number {
  const n = Number(s);
  if (!/^\d+$/.test(s.trim()) || !Number.isSafeInteger(n) || n <= 0) {
    throw new DatasetError(`${file}:${line}: ${what} must be a positive integer, got "${s}"`);
  }
  return n;
}

/** Parses `movies.csv` text; throws {@linkcode DatasetError} naming the line. */
export function parseMoviesCsv(text: string, file = "movies.csv"): Movie[] {
  const all = lines(text);
  if (!/^movieId,title,genres$/.test(all[0]?.trim() ?? "")) {
    throw new DatasetError(`${file}:1: header must be movieId,title,genres`);
  }
  const movies: Movie[] = [];
  const seen = new Set<number>();
  for (let i = 1; i < all.length; i++) {
    if (all[i].trim() === "") continue;
    let f: string[];
    try {
      f = parseCsvLine(all[i]);
    } catch (err) {
      throw new DatasetError(`${file}:${i + 1}: ${(err as Error).message}`);
    }
    if (f.length !== 3) throw new DatasetError(`${file}:${i + 1}: expected 3 fields`);
    const id = intField(f[0], file, i + 1, "movieId");
    if (seen.has(id)) throw new DatasetError(`${file}:${i + 1}: duplicate movieId ${id}`);
    seen.add(id);
    movies.push({ id, title: f[1], genres: f[2] });
  }
  return movies;
}

/** Parses `ratings.csv` text; throws {@linkcode DatasetError} naming the line. */
export function parseRatingsCsv(text: string, file = "ratings.csv"): Rating[] {
  const all = lines(text);
  if (!/^userId,movieId,rating,timestamp$/.test(all[0]?.trim() ?? "")) {
    throw new DatasetError(`${file}:1: header must be userId,movieId,rating,timestamp`);
  }
  const ratings: Rating[] = [];
  for (let i = 1; i < all.length; i++) {
    const line = all[i];
    if (line.trim() === "") continue;
    const f = line.split(",");
    if (f.length !== 4) throw new DatasetError(`${file}:${i + 1}: expected 4 fields`);
    const rating = Number(f[2]);
    if (!isValidRating(rating)) {
      throw new DatasetError(
        `${file}:${i + 1}: rating must be 0.5..5.0 in 0.5 steps, got "${f[2]}"`,
      );
    }
    const time = Number(f[3]);
    if (!Number.isSafeInteger(time) || time < 0) {
      throw new DatasetError(`${file}:${i + 1}: timestamp must be unix seconds, got "${f[3]}"`);
    }
    ratings.push({
      user: intField(f[0], file, i + 1, "userId"),
      movie: intField(f[1], file, i + 1, "movieId"),
      rating,
      time,
    });
  }
  return ratings;
}

/** Reads `DIR/movies.csv` and `DIR/ratings.csv`, checking every rating names a movie. */
export async function readDatasetDir(dir: string): Promise<Dataset> {
  const read = async (name: string) => {
    const path = `${dir}/${name}`;
    try {
      return [path, await Deno.readTextFile(path)] as const;
    } catch (err) {
      const why = err instanceof Deno.errors.NotFound ? "no such file" : (err as Error).message;
      throw new DatasetError(`${path}: cannot read: ${why}`);
    }
  };
  const [mp, mt] = await read("movies.csv");
  const [rp, rt] = await read("ratings.csv");
  const movies = parseMoviesCsv(mt, mp);
  const ratings = parseRatingsCsv(rt, rp);
  const ids = new Set(movies.map((m) => m.id));
  const pairs = new Set<number>();
  for (const [i, r] of ratings.entries()) {
    if (!ids.has(r.movie)) {
      throw new DatasetError(`${rp}: rating ${i + 1} names unknown movieId ${r.movie}`);
    }
    const key = cellKey(r.user, r.movie);
    if (pairs.has(key)) {
      throw new DatasetError(`${rp}: rating ${i + 1} repeats user ${r.user} movie ${r.movie}`);
    }
    pairs.add(key);
  }
  return { movies, ratings };
}

/** Writes `movies.csv` and `ratings.csv` of `data` into `dir` (created). */
export async function writeDatasetDir(dir: string, data: Dataset): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(`${dir}/movies.csv`, moviesCsv(data.movies));
  await Deno.writeTextFile(`${dir}/ratings.csv`, ratingsCsv(data.ratings));
}

/** Largest user id accepted (keeps {@linkcode cellKey} exact). */
export const MAX_USER_ID = 900_000_000;
/** Largest movie id accepted. */
export const MAX_MOVIE_ID = 9_999_999;

/** One number for a (user, movie) pair. */
export function cellKey(user: number, movie: number): number {
  return user * 10_000_000 + movie;
}
