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
const DATE_RE = /^(\d{4})-(\d{2})-(\d{2})$/;

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

function isDate(text: string): boolean {
  const m = DATE_RE.exec(text);
  if (!m) return false;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const date = new Date(Date.UTC(y, mo - 1, d));
  return y >= 1900 && date.getUTCFullYear() === y && date.getUTCMonth() === mo - 1 &&
    date.getUTCDate() === d && date.getTime() <= Date.now();
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
