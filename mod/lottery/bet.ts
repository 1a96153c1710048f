/**
 * Bets: the CSV format of an agency file (`first_name,last_name,document,birthdate,number`,
 * no header, CRLF or LF, UTF-8) and the validation both sides apply.
 *
 * @module
 */

/** One bet as sent on the wire: `[first_name, last_name, document, birthdate, number]`. */
export type Bet = [string, string, string, string, number];

/** The number that wins, as the course's `has_won` (`LOTTERY_WINNER_NUMBER`). */
export const DEFAULT_WINNING_NUMBER = 7574;

/** Largest name length accepted. */
export const MAX_NAME_LENGTH = 100;

const DOCUMENT_RE = /^\d{1,20}$/;

/** Why `value` is not a valid bet, or undefined when it is. */
export function betProblem(value: unknown): string | undefined {
  if (!Array.isArray(value) || value.length !== 5) return "must have 5 fields";
  const [first, last, document, birthdate, number] = value;
  if (typeof first !== "string" || first.trim() === "") return "first_name is empty";
  if (typeof last !== "string" || last.trim() === "") return "last_name is empty";
  if (first.length > MAX_NAME_LENGTH || last.length > MAX_NAME_LENGTH) {
    return `a name is longer than ${MAX_NAME_LENGTH} characters`;
  }
  if (typeof document !== "string" || !DOCUMENT_RE.test(document)) {
    return `document "${String(document)}" is not 1 to 20 digits`;
  }
  if (typeof birthdate !== "string" || !isDate(birthdate)) {
    return `birthdate "${String(birthdate)}" is not a YYYY-MM-DD date`;
  }
  if (typeof number !== "number" || !Number.isInteger(number) || number < 0 || number > 9999) {
    return `number ${JSON.stringify(number)} is not an integer 0..9999`;
  }
  return undefined;
}

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

function isDate(text: string): boolean {
  return isDateAt(text, 0, text.length);
}

/** Whether `text[start, end)` is a YYYY-MM-DD date from 1900-01-01 to today. */
function isDateAt(text: string, start: number, end: number): boolean {
  // by hand: this runs for every bet on both sides, and Date objects cost more
  if (end - start !== 10 || text.charCodeAt(start + 4) !== 45) return false;
  if (text.charCodeAt(start + 7) !== 45) return false;
  let y = 0;
  let mo = 0;
  let d = 0;
  for (let i = 0; i < 10; i++) {
    if (i === 4 || i === 7) continue;
    const c = text.charCodeAt(start + i) - 48;
    if (c < 0 || c > 9) return false;
    if (i < 4) y = y * 10 + c;
    else if (i < 7) mo = mo * 10 + c;
    else d = d * 10 + c;
  }
  if (y < 1900 || mo < 1 || mo > 12 || d < 1) return false;
  const leap = (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
  const days = mo === 2 && leap ? 29 : DAYS_IN_MONTH[mo - 1];
  return d <= days && y * 10_000 + mo * 100 + d <= today();
}

let todayCache = 0;
let todayCachedAt = 0;

/** Today (UTC) as the number YYYYMMDD, recomputed at most once a minute. */
function today(): number {
  const now = Date.now();
  if (now - todayCachedAt > 60_000) {
    const t = new Date(now);
    todayCache = t.getUTCFullYear() * 10_000 + (t.getUTCMonth() + 1) * 100 + t.getUTCDate();
    todayCachedAt = now;
  }
  return todayCache;
}

/** One line of an agency file that could not be read as a bet. */
export interface InvalidLine {
  /** 1-based line number. */
  line: number;
  /** What is wrong. */
  reason: string;
}

/** Field bounds found by the last `scanBetLine`: start, end of each of the 5 fields, trimmed. */
const bounds = new Int32Array(10);

function isBlankCode(c: number): boolean {
  return c <= 32;
}

/**
 * Checks the bet in `text[start, end)` (one CSV line; a trailing CR ignored) and leaves
 * its trimmed field bounds in `bounds`. Returns the problem, or undefined when valid.
 * Allocates nothing for a valid line: the agency runs it on every line of its file.
 */
function scanBetLine(text: string, start: number, end: number): string | undefined {
  if (end > start && text.charCodeAt(end - 1) === 13) end--;
  let from = start;
  for (let f = 0; f < 5; f++) {
    let to = end;
    if (f < 4) {
      to = text.indexOf(",", from);
      if (to < 0 || to >= end) {
        return `expected 5 comma-separated fields, got ${text.slice(start, end).split(",").length}`;
      }
    } else {
      for (let i = from; i < end; i++) {
        if (text.charCodeAt(i) === 44) {
          return `expected 5 comma-separated fields, got ${
            text.slice(start, end).split(",").length
          }`;
        }
      }
    }
    let a = from;
    let b = to;
    while (a < b && isBlankCode(text.charCodeAt(a))) a++;
    while (b > a && isBlankCode(text.charCodeAt(b - 1))) b--;
    bounds[2 * f] = a;
    bounds[2 * f + 1] = b;
    from = to + 1;
  }
  if (bounds[0] === bounds[1]) return "first_name is empty";
  if (bounds[2] === bounds[3]) return "last_name is empty";
  if (bounds[1] - bounds[0] > MAX_NAME_LENGTH || bounds[3] - bounds[2] > MAX_NAME_LENGTH) {
    return `a name is longer than ${MAX_NAME_LENGTH} characters`;
  }
  const docLength = bounds[5] - bounds[4];
  let docOk = docLength >= 1 && docLength <= 20;
  for (let i = bounds[4]; docOk && i < bounds[5]; i++) {
    const c = text.charCodeAt(i);
    if (c < 48 || c > 57) docOk = false;
  }
  if (!docOk) return `document "${text.slice(bounds[4], bounds[5])}" is not 1 to 20 digits`;
  if (!isDateAt(text, bounds[6], bounds[7])) {
    return `birthdate "${text.slice(bounds[6], bounds[7])}" is not a YYYY-MM-DD date`;
  }
  if (numberAt(text, bounds[8], bounds[9]) < 0) {
    return `number "${text.slice(bounds[8], bounds[9])}" is not an integer 0..9999`;
  }
  return undefined;
}

/** The integer 0..9999 written in `text[start, end)`, or -1. */
function numberAt(text: string, start: number, end: number): number {
  if (start === end || end - start > 4) return -1;
  let n = 0;
  for (let i = start; i < end; i++) {
    const d = text.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return -1;
    n = n * 10 + d;
  }
  return n;
}

/** Why the bet on line `text[start, end)` is invalid (a trailing CR ignored), or undefined. */
export function betLineProblem(text: string, start = 0, end = text.length): string | undefined {
  return scanBetLine(text, start, end);
}

/**
 * Parses one CSV line (without its line feed; a trailing CR is ignored) into a bet, or
 * returns what is wrong with it. Fields are trimmed. The same check runs on the agency
 * (before sending) and on the server (again, never trusting the client).
 */
export function parseBetLine(line: string): Bet | string {
  return parseBetAt(line, 0, line.length);
}

function parseBetAt(text: string, start: number, end: number): Bet | string {
  const problem = scanBetLine(text, start, end);
  if (problem !== undefined) return problem;
  return [
    text.slice(bounds[0], bounds[1]),
    text.slice(bounds[2], bounds[3]),
    text.slice(bounds[4], bounds[5]),
    text.slice(bounds[6], bounds[7]),
    numberAt(text, bounds[8], bounds[9]),
  ];
}

/** A batch whose bets all parsed, or the first bad one (0-based index among its lines). */
export type BatchParse = { bets: Bet[] } | { index: number; problem: string };

/**
 * Parses a batch sent as CSV text (lines separated by LF or CRLF; one trailing line
 * feed allowed). Every line must be a valid bet: a blank line is a bad bet too.
 */
export function parseBetBatch(csv: string, maxBets: number): BatchParse {
  const bets: Bet[] = [];
  let start = 0;
  const len = csv.length;
  while (start < len) {
    let nl = csv.indexOf("\n", start);
    if (nl < 0) nl = len;
    if (bets.length >= maxBets) {
      return { index: bets.length, problem: `more than ${maxBets} bets in one batch` };
    }
    const parsed = parseBetAt(csv, start, nl);
    if (typeof parsed === "string") return { index: bets.length, problem: parsed };
    bets.push(parsed);
    start = nl + 1;
  }
  return { bets };
}

/** Parses an agency CSV; returns the valid bets and the invalid lines (blank lines skipped). */
export function parseBetsCsv(text: string): { bets: Bet[]; invalid: InvalidLine[] } {
  const bets: Bet[] = [];
  const invalid: InvalidLine[] = [];
  forEachCsvLine(text, (lineNo, start, end) => {
    const parsed = parseBetAt(text, start, end);
    if (typeof parsed === "string") invalid.push({ line: lineNo, reason: parsed });
    else bets.push(parsed);
  });
  return { bets, invalid };
}

/**
 * Calls `visit` for every non-blank line of `text` (a leading BOM skipped) with its 1-based
 * number and its start and end offsets in `text` (the end before the LF; a CR stays).
 */
export function forEachCsvLine(
  text: string,
  visit: (lineNo: number, start: number, end: number) => void,
): void {
  let start = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  let lineNo = 0;
  const len = text.length;
  while (start < len) {
    lineNo++;
    let nl = text.indexOf("\n", start);
    if (nl < 0) nl = len;
    let blank = true;
    for (let i = start; i < nl; i++) {
      if (text.charCodeAt(i) > 32) {
        blank = false;
        break;
      }
    }
    if (!blank) visit(lineNo, start, nl);
    start = nl + 1;
  }
}

/** Formats bets as agency CSV lines (LF). */
export function formatBetsCsv(bets: Bet[]): string {
  return bets.map((b) => b.join(",")).join("\n") + (bets.length ? "\n" : "");
}
