/**
 * `peerd --role lottery-server`: receives agencies' bets in batches, in parallel; stores
 * each batch atomically (once, however often it is resent); when every agency is done it
 * holds the draw and answers each agency's winners query with that agency's winners only.
 *
 * Batches that arrive in one tick are stored in one SQLite transaction and acknowledged
 * after it commits. Course log lines go to stdout.
 *
 * @module
 */
import { ctlCommand } from "../ctl/mod.ts";
import {
  aborted,
  defineRole,
  type RoleContext,
  startNodeServer,
  Tick,
  UsageError,
} from "../process/mod.ts";
import {
  fieldArray,
  fieldBool,
  fieldInt,
  fieldOptInt,
  type Message,
  type PeerSession,
  ProtocolError,
} from "../wire/mod.ts";
import {
  type Bet,
  betProblem,
  DEFAULT_WINNING_NUMBER,
  forEachCsvLine,
  parseBetBatch,
} from "./bet.ts";
import {
  type BatchDifference,
  LotteryStore,
  type PendingBatch,
  type RoundInfo,
  type StoreOutcome,
} from "./store.ts";
import { prepareDataDir } from "../storage/mod.ts";

/** Most bets accepted in one batch. */
export const MAX_BATCH_BETS = 10_000;

interface Waiting {
  session: PeerSession;
  request: Message;
  agency: number;
  round: number;
}

type Pending = PendingBatch & { session: PeerSession; request: Message };

/**
 * The lottery server's logic over its store: validation, batching, done, draw, winners, by
 * round. A round is open until its draw; bets for a drawn round are refused (`draw_done`),
 * and the next round starts explicitly (`startRound`, from `--round` or `ctl new-round`).
 * Every refused batch is logged as `action: apuesta_recibida | result: fail | cantidad: N`.
 */
export class LotteryServer {
  readonly #ctx: RoleContext;
  readonly #store: LotteryStore;
  readonly #agencies: number;
  readonly #winning: number;
  #pending: Pending[] = [];
  /** Stores the batches of one turn in one transaction. */
  readonly #flushTick = new Tick(() => this.flush());
  #round: RoundInfo;
  #done: Set<number>;
  #waiting: Waiting[] = [];
  #transactions = 0;
  #refused = 0;

  constructor(ctx: RoleContext, store: LotteryStore, agencies: number, winning: number) {
    this.#ctx = ctx;
    this.#store = store;
    this.#agencies = agencies;
    this.#winning = winning;
    this.#round = store.currentRound();
    this.#done = store.doneAgencies(this.#round.round);
    if (!this.#round.drawn && this.#done.size >= agencies) this.#draw();
  }

  /** The current round's number. */
  get round(): number {
    return this.#round.round;
  }

  /**
   * Opens round `round` (default: the next one). Allowed when the current round is drawn,
   * or has no stored bet and no finished agency; `round` must be greater than the current.
   */
  startRound(round = this.#round.round + 1): RoundInfo {
    const current = this.#round;
    if (round === current.round && !current.drawn) return current;
    if (round <= current.round) {
      throw new ProtocolError(
        "round_closed",
        `Cannot open round ${round}: it is ${
          round === current.round ? "drawn" : "closed"
        }; the current round is ${current.round}${current.drawn ? " (drawn)" : ""}`,
        { round, current: current.round },
      );
    }
    this.flush();
    if (!current.drawn && (this.#store.roundBets(current.round) > 0 || this.#done.size > 0)) {
      throw new ProtocolError(
        "round_open",
        `Cannot open round ${round}: round ${current.round} is not drawn (${this.#done.size} of ${this.#agencies} agencies done)`,
        { round, current: current.round },
      );
    }
    this.#store.startRound(round);
    this.#round = { round, drawn: false, winningNumber: null };
    this.#done = new Set();
    this.#ctx.events.emit("round.started", { round });
    console.log(`action: nueva_ronda | result: success | ronda: ${round}`);
    return this.#round;
  }

  /** Handler of `{t:"round"}`: the current round. */
  roundInfo(): Message {
    return {
      t: "round.ok",
      round: this.#round.round,
      drawn: this.#round.drawn,
      agencies: this.#agencies,
      done: [...this.#done].sort((a, b) => a - b),
    };
  }

  /**
   * Handler of `{t:"bets", agency, seq, round?, csv}` (the batch as CSV lines, as agencies
   * send it) or `{t:"bets", agency, seq, round?, bets}` (an array of `[first, last,
   * document, birthdate, number]`). Every bet is validated again; a bad one rejects the
   * whole batch. Without `round`, the current round.
   */
  bets(msg: Message, session: PeerSession): Message | undefined {
    let count = -1; // known once parsed; counted from the frame only for a refusal before that
    try {
      const agency = this.#agency(msg);
      const seq = fieldInt(msg, "seq", { min: 0, max: 2 ** 31 });
      const round = this.#roundOf(msg);
      const bets = parseBets(msg, seq);
      count = bets.length;
      const closed = round < this.#round.round || this.#round.drawn;
      if (closed || this.#done.has(agency)) {
        // a resend of what is stored is still acknowledged: that makes resuming idempotent
        const stored = this.#store.compareBatch(round, agency, seq, bets);
        if (stored === "same") return { t: "bets.ok", agency, seq, round, count, duplicate: true };
        if (stored !== undefined && !closed) {
          throw conflictError({ round, agency, seq, bets }, stored);
        }
        if (closed) {
          throw new ProtocolError(
            "draw_done",
            `Cannot store batch ${seq} of agency ${agency}: round ${round} is drawn${
              round < this.#round.round ? `; the current round is ${this.#round.round}` : ""
            }`,
            { agency, seq, round, current: this.#round.round },
          );
        }
        throw new ProtocolError(
          "agency_done",
          `Cannot store batch ${seq}: agency ${agency} already said done in round ${round}`,
          { agency, seq, round },
        );
      }
      this.#pending.push({ round, agency, seq, bets, session, request: msg });
      this.#flushTick.schedule();
      return undefined;
    } catch (err) {
      if (err instanceof ProtocolError) this.#logRefused(count < 0 ? batchSize(msg) : count, err);
      throw err;
    }
  }

  /** Stores every pending batch in one transaction and acknowledges them. */
  flush(): void {
    const batch = this.#pending;
    if (batch.length === 0) return;
    this.#pending = [];
    this.#transactions++;
    let outcomes: StoreOutcome[];
    try {
      outcomes = this.#store.storeBatches(batch);
    } catch (err) {
      for (const b of batch) {
        const refusal = new ProtocolError(
          "store_failed",
          `Cannot store batch ${b.seq}: ${err instanceof Error ? err.message : String(err)}`,
        );
        this.#logRefused(b.bets.length, refusal);
        b.session.replyError(b.request, refusal);
      }
      this.#ctx.events.emit("store.failed", { error: String(err) });
      return;
    }
    batch.forEach((b, i) => {
      const outcome = outcomes[i];
      if (outcome.kind === "conflict") {
        const refusal = conflictError(b, outcome.difference);
        this.#logRefused(b.bets.length, refusal);
        b.session.replyError(b.request, refusal);
        return;
      }
      if (outcome.kind === "stored") {
        console.log(`action: apuesta_recibida | result: success | cantidad: ${b.bets.length}`);
        this.#ctx.events.emit("batch.stored", {
          round: b.round,
          agency: b.agency,
          seq: b.seq,
          count: b.bets.length,
        });
      }
      b.session.reply(b.request, {
        t: "bets.ok",
        agency: b.agency,
        seq: b.seq,
        round: b.round,
        count: b.bets.length,
        duplicate: outcome.kind === "duplicate",
      });
    });
  }

  /** Stores what is pending and stops scheduling. Safe to call twice. */
  close(): void {
    this.flush();
    this.#flushTick.close();
  }

  /** Handler of `{t:"done", agency, round?, batches?}`. */
  done(msg: Message): Message {
    const agency = this.#agency(msg);
    const round = this.#roundOf(msg);
    const claimed = fieldOptInt(msg, "batches", { min: 0 });
    this.flush();
    if (round < this.#round.round || this.#done.has(agency)) {
      throw new ProtocolError(
        "already_done",
        `Cannot mark agency ${agency} done in round ${round}: it already is`,
        { agency, round },
      );
    }
    if (this.#round.drawn) {
      throw new ProtocolError(
        "draw_done",
        `Cannot mark agency ${agency} done: round ${round} is drawn`,
        { agency, round },
      );
    }
    const counts = this.#store.agencyCounts(round, agency);
    if (claimed !== undefined && counts.batches !== claimed) {
      throw new ProtocolError(
        "missing_batches",
        `Cannot mark agency ${agency} done: it sent ${claimed} batches, ${counts.batches} are stored`,
      );
    }
    this.#store.markDone(round, agency, counts.batches);
    this.#done.add(agency);
    this.#ctx.events.emit("agency.done", {
      round,
      agency,
      batches: counts.batches,
      bets: counts.bets,
    });
    if (this.#done.size >= this.#agencies && !this.#round.drawn) this.#draw();
    return { t: "done.ok", agency, round, batches: counts.batches, bets: counts.bets };
  }

  /**
   * Handler of `{t:"winners", agency, round?, wait?}`: the winners of that round after its
   * draw; with `wait`, held until the current round's draw.
   */
  winners(msg: Message, session: PeerSession): Message | undefined {
    const agency = this.#agency(msg);
    const round = this.#roundOf(msg);
    if (round === this.#round.round && !this.#round.drawn) {
      if (fieldBool(msg, "wait")) {
        this.#waiting.push({ session, request: msg, agency, round });
        return undefined;
      }
      throw new ProtocolError(
        "not_drawn",
        `Cannot tell winners of round ${round} yet: ${this.#done.size} of ${this.#agencies} agencies are done`,
        { done: this.#done.size, agencies: this.#agencies, round },
      );
    }
    return this.#winnersReply(round, agency);
  }

  /** Status fields for ctl. */
  status(): Record<string, unknown> {
    const round = this.#round.round;
    return {
      round,
      agencies: this.#agencies,
      done: [...this.#done].sort((a, b) => a - b),
      bets: this.#store.roundBets(round),
      bets_all_rounds: this.#store.totalBets(),
      drawn: this.#round.drawn,
      winners: this.#round.drawn ? this.#store.winnerCount(round) : null,
      winning_number: this.#round.winningNumber ?? this.#winning,
      pending_batches: this.#pending.length,
      refused_batches: this.#refused,
      transactions: this.#transactions,
    };
  }

  #winnersReply(round: number, agency: number): Message {
    const documents = this.#store.winners(round, agency);
    console.log(
      `action: consulta_ganadores | result: success | cant_ganadores: ${documents.length}`,
    );
    this.#ctx.events.emit("winners.sent", { round, agency, count: documents.length });
    return { t: "winners.ok", agency, round, documents };
  }

  #draw(): void {
    const round = this.#round.round;
    const winners = this.#store.draw(round, this.#winning);
    this.#round = { round, drawn: true, winningNumber: this.#winning };
    console.log("action: sorteo | result: success");
    this.#ctx.events.emit("draw", { round, winners, winning_number: this.#winning });
    for (const w of this.#waiting.splice(0)) {
      w.session.reply(w.request, this.#winnersReply(w.round, w.agency));
    }
  }

  #logRefused(count: number, err: ProtocolError): void {
    this.#refused++;
    console.log(`action: apuesta_recibida | result: fail | cantidad: ${count}`);
    this.#ctx.events.emit("batch.refused", { code: err.code, count, message: err.message });
  }

  #roundOf(msg: Message): number {
    const round = fieldOptInt(msg, "round", { min: 1, max: 2 ** 31 }) ?? this.#round.round;
    if (round > this.#round.round) {
      throw new ProtocolError(
        "round_not_open",
        `Cannot use round ${round}: it is not open; the current round is ${this.#round.round}`,
        { round, current: this.#round.round },
      );
    }
    if (round !== this.#round.round && this.#store.round(round) === undefined) {
      throw new ProtocolError("unknown_round", `Cannot use round ${round}: no such round`, {
        round,
      });
    }
    return round;
  }

  #agency(msg: Message): number {
    const agency = fieldInt(msg, "agency");
    if (agency < 1 || agency > this.#agencies) {
      throw new ProtocolError(
        "unknown_agency",
        `Cannot accept agency ${agency}: agencies are 1..${this.#agencies}`,
      );
    }
    return agency;
  }
}

/** The bets of a `bets` frame, validated; a bad one refuses the whole batch. */
function parseBets(msg: Message, seq: number): Bet[] {
  let bets: Bet[];
  if (typeof msg.csv === "string") {
    const parsed = parseBetBatch(msg.csv, MAX_BATCH_BETS);
    if ("problem" in parsed) throw badBet(seq, parsed.index, parsed.problem);
    bets = parsed.bets;
  } else if (msg.csv !== undefined) {
    throw new ProtocolError("bad_field", "Field 'csv' must be a string of CSV lines");
  } else {
    const raw = fieldArray(msg, "bets");
    if (raw.length > MAX_BATCH_BETS) {
      throw new ProtocolError(
        "bad_batch",
        `Cannot store batch ${seq}: it must hold 1..${MAX_BATCH_BETS} bets, got ${raw.length}`,
      );
    }
    for (let i = 0; i < raw.length; i++) {
      const problem = betProblem(raw[i]);
      if (problem) throw badBet(seq, i, problem);
    }
    bets = raw as Bet[];
  }
  if (bets.length === 0) {
    throw new ProtocolError(
      "bad_batch",
      `Cannot store batch ${seq}: it must hold 1..${MAX_BATCH_BETS} bets, got 0`,
    );
  }
  return bets;
}

/** How many bets a `bets` frame holds, for the log line of a refusal (before parsing it). */
function batchSize(msg: Message): number {
  if (typeof msg.csv === "string") {
    let n = 0;
    forEachCsvLine(msg.csv, () => n++);
    return n;
  }
  return Array.isArray(msg.bets) ? msg.bets.length : 0;
}

function conflictError(b: PendingBatch, d: BatchDifference): ProtocolError {
  const what = d.index !== undefined
    ? `bet ${d.index} differs (stored "${d.stored}", sent "${d.sent}")`
    : `the stored batch holds ${d.storedCount} bets, this one ${d.sentCount}`;
  return new ProtocolError(
    "conflict",
    `Cannot store batch ${b.seq} of agency ${b.agency} in round ${b.round}: a different batch ${b.seq} is stored: ${what}`,
    { agency: b.agency, seq: b.seq, round: b.round, ...d },
  );
}

function badBet(seq: number, index: number, problem: string): ProtocolError {
  return new ProtocolError(
    "bad_bet",
    `Cannot store batch ${seq}: bet ${index}: ${problem}; nothing of the batch was stored`,
    { index, seq },
  );
}

/** The lottery server role. */
export const lotteryServerRole = defineRole({
  name: "lottery-server",
  summary:
    "lottery: stores agencies' bets in batches, draws when all are done, tells each its winners",
  peers: "optional",
  defaultPort: 7601,
  options: {
    agencies: {
      type: "int",
      min: 1,
      help: "how many agencies take part (the draw waits for all)",
    },
    winningNumber: {
      type: "int",
      default: DEFAULT_WINNING_NUMBER,
      min: 0,
      max: 9999,
      help: "the number that wins",
    },
    round: {
      type: "int",
      min: 1,
      help:
        "serve round n: opens it if the stored round is drawn (or empty); default: the stored round",
    },
  },
  examples: [
    "peerd --role lottery-server --name lottery --peers peers.json --agencies 5",
    "peerd --role lottery-server --name lottery --peers peers.json --agencies 5 --round 2",
    "peerd ctl 127.0.0.1:7601 status",
    "peerd ctl 127.0.0.1:7601 new-round",
  ],
  async run(ctx) {
    const { agencies, winningNumber: winning, round } = ctx.options;
    if (agencies === undefined) throw new UsageError("--agencies must be given, ≥ 1");
    prepareDataDir(ctx.dataDir);
    const store = new LotteryStore(`${ctx.dataDir}/lottery.db`);
    try {
      const lottery = new LotteryServer(ctx, store, agencies, winning);
      if (round !== undefined && round !== lottery.round) {
        try {
          lottery.startRound(round);
        } catch (err) {
          if (err instanceof ProtocolError) {
            throw new UsageError(`--round ${round}: ${err.message}`);
          }
          throw err;
        }
      }
      const server = startNodeServer(ctx, {
        handlers: {
          echo: (msg) => ({ t: "echo.ok", data: msg.data }),
          round: () => lottery.roundInfo(),
          bets: (msg, s) => lottery.bets(msg, s),
          done: (msg) => lottery.done(msg),
          winners: (msg, s) => lottery.winners(msg, s),
        },
        ctl: {
          status: () => lottery.status(),
          "new-round": ctlCommand("new-round", {
            summary: "open the next round (or round n) once the current one is drawn",
            args: { n: { type: "int", min: 1, optional: true, help: "the round to open" } },
          }, ({ n }) => ({ round: lottery.startRound(n).round })),
        },
      });
      try {
        ctx.events.emit("ready", {
          listen: `${ctx.listen.hostname}:${server.port}`,
          agencies,
          round: lottery.round,
        });
        ctx.log.info(
          `listening on ${ctx.listen.hostname}:${server.port} for ${agencies} agencies, round ${lottery.round}`,
        );
        await aborted(ctx.signal);
        lottery.flush(); // finish the batches in progress before closing
      } finally {
        await server.close();
        lottery.close();
      }
      console.log("action: shutdown | result: success");
    } finally {
      store.close();
    }
    return 0;
  },
});
