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
  // YYYY-MM-DD by hand: this runs for every bet on both sides, and Date objects cost more
  if (text.length !== 10 || text.charCodeAt(4) !== 45 || text.charCodeAt(7) !== 45) return false;
  let y = 0;
  let mo = 0;
  let d = 0;
  for (let i = 0; i < 10; i++) {
    if (i === 4 || i === 7) continue;
    const c = text.charCodeAt(i) - 48;
    if (c < 0 || c > 9) return false;
    if (i < 4) y = y * 10 + c;
    else if (i < 7) mo = mo * 10 + c;
    else d = d * 10 + c;
  }
  if (y < 1900 || mo < 1 || mo > 12 || d < 1) return false;
  const leap = (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
  const days = mo === 2 && leap ? 29 : DAYS_IN_MONTH[mo - 1];
  return d <= days && text <= today();
}

let todayCache = "";
let todayCachedAt = 0;

function today(): string {
  const now = Date.now();
  if (now - todayCachedAt > 60_000) {
    todayCache = new Date(now).toISOString().slice(0, 10);
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

/** Parses an agency CSV; returns the valid bets and the invalid lines (blank lines skipped). */
export function parseBetsCsv(text: string): { bets: Bet[]; invalid: InvalidLine[] } {
  const bets: Bet[] = [];
  const invalid: InvalidLine[] = [];
  const lines = text.replace(/^\uFEFF/, "").split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i];
    if (raw.trim() === "") continue;
    const parts = raw.split(",");
    if (parts.length !== 5) {
      invalid.push({
        line: i + 1,
        reason: `expected 5 comma-separated fields, got ${parts.length}`,
      });
      continue;
    }
    const numberText = parts[4].trim();
    const bet: Bet = [
      parts[0].trim(),
      parts[1].trim(),
      parts[2].trim(),
      parts[3].trim(),
      /^\d+$/.test(numberText) ? Number(numberText) : NaN,
    ];
    const problem = Number.isNaN(bet[4])
      ? `number "${numberText}" is not an integer 0..9999`
      : betProblem(bet);
    if (problem) invalid.push({ line: i + 1, reason: problem });
    else bets.push(bet);
  }
  return { bets, invalid };
}

/** Formats bets as agency CSV lines (LF). */
export function formatBetsCsv(bets: Bet[]): string {
  return bets.map((b) => b.join(",")).join("\n") + (bets.length ? "\n" : "");
}
