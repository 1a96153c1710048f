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
import { setImmediate } from "node:timers";
import {
  aborted,
  type RoleContext,
  type RoleDefinition,
  startNodeServer,
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
import { type Bet, betProblem, DEFAULT_WINNING_NUMBER, parseBetBatch } from "./bet.ts";
import { LotteryStore, type PendingBatch } from "./store.ts";
import { prepareDataDir } from "../storage/mod.ts";

/** Most bets accepted in one batch. */
export const MAX_BATCH_BETS = 10_000;

interface Waiting {
  session: PeerSession;
  request: Message;
  agency: number;
}

/** The lottery server's logic over its store: validation, batching, done, draw, winners. */
export class LotteryServer {
  readonly #ctx: RoleContext;
  readonly #store: LotteryStore;
  readonly #agencies: number;
  readonly #winning: number;
  #pending: Array<PendingBatch & { session: PeerSession; request: Message }> = [];
  #flushScheduled = false;
  #done: Set<number>;
  #waiting: Waiting[] = [];
  #transactions = 0;

  constructor(ctx: RoleContext, store: LotteryStore, agencies: number, winning: number) {
    this.#ctx = ctx;
    this.#store = store;
    this.#agencies = agencies;
    this.#winning = winning;
    this.#done = store.doneAgencies();
    if (!store.drawn() && this.#done.size >= agencies) this.#draw();
  }

  /**
   * Handler of `{t:"bets", agency, seq, csv}` (the batch as CSV lines, as agencies send it)
   * or `{t:"bets", agency, seq, bets}` (an array of `[first, last, document, birthdate,
   * number]`). Every bet is validated again; a bad one rejects the whole batch.
   */
  bets(msg: Message, session: PeerSession): Message | undefined {
    const agency = this.#agency(msg);
    const seq = fieldInt(msg, "seq", { min: 0, max: 2 ** 31 });
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
    if (this.#done.has(agency)) {
      if (this.#store.hasBatch(agency, seq)) {
        return { t: "bets.ok", agency, seq, count: bets.length, duplicate: true };
      }
      throw new ProtocolError(
        "agency_done",
        `Cannot store batch ${seq}: agency ${agency} already said done`,
      );
    }
    this.#pending.push({ agency, seq, bets, session, request: msg });
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      setImmediate(() => this.flush());
    }
    return undefined;
  }

  /** Stores every pending batch in one transaction and acknowledges them. */
  flush(): void {
    this.#flushScheduled = false;
    const batch = this.#pending;
    if (batch.length === 0) return;
    this.#pending = [];
    this.#transactions++;
    let fresh: boolean[];
    try {
      fresh = this.#store.storeBatches(batch);
    } catch (err) {
      for (const b of batch) {
        b.session.replyError(
          b.request,
          new ProtocolError("internal", `Cannot store batch ${b.seq}: ${String(err)}`),
        );
      }
      return;
    }
    batch.forEach((b, i) => {
      if (fresh[i]) {
        console.log(`action: apuesta_recibida | result: success | cantidad: ${b.bets.length}`);
        this.#ctx.events.emit("batch.stored", {
          agency: b.agency,
          seq: b.seq,
          count: b.bets.length,
        });
      }
      b.session.reply(b.request, {
        t: "bets.ok",
        agency: b.agency,
        seq: b.seq,
        count: b.bets.length,
        duplicate: !fresh[i],
      });
    });
  }

  /** Handler of `{t:"done", agency, batches?}`. */
  done(msg: Message): Message {
    const agency = this.#agency(msg);
    const claimed = fieldOptInt(msg, "batches", { min: 0 });
    this.flush();
    if (this.#done.has(agency)) {
      throw new ProtocolError("already_done", `Cannot mark agency ${agency} done: it already is`);
    }
    const counts = this.#store.agencyCounts(agency);
    if (claimed !== undefined && counts.batches !== claimed) {
      throw new ProtocolError(
        "missing_batches",
        `Cannot mark agency ${agency} done: it sent ${claimed} batches, ${counts.batches} are stored`,
      );
    }
    this.#store.markDone(agency, counts.batches);
    this.#done.add(agency);
    this.#ctx.events.emit("agency.done", { agency, batches: counts.batches, bets: counts.bets });
    if (this.#done.size >= this.#agencies && !this.#store.drawn()) this.#draw();
    return { t: "done.ok", agency, batches: counts.batches, bets: counts.bets };
  }

  /** Handler of `{t:"winners", agency, wait?}`: winners after the draw; with `wait`, held until it. */
  winners(msg: Message, session: PeerSession): Message | undefined {
    const agency = this.#agency(msg);
    if (!this.#store.drawn()) {
      if (fieldBool(msg, "wait")) {
        this.#waiting.push({ session, request: msg, agency });
        return undefined;
      }
      throw new ProtocolError(
        "not_drawn",
        `Cannot tell winners yet: ${this.#done.size} of ${this.#agencies} agencies are done`,
        { done: this.#done.size, agencies: this.#agencies },
      );
    }
    return this.#winnersReply(agency);
  }

  /** Status fields for ctl. */
  status(): Record<string, unknown> {
    return {
      agencies: this.#agencies,
      done: [...this.#done].sort((a, b) => a - b),
      bets: this.#store.totalBets(),
      drawn: this.#store.drawn(),
      winners: this.#store.drawn() ? this.#store.winnerCount() : null,
      winning_number: this.#winning,
      pending_batches: this.#pending.length,
      transactions: this.#transactions,
    };
  }

  #winnersReply(agency: number): Message {
    const documents = this.#store.winners(agency);
    console.log(
      `action: consulta_ganadores | result: success | cant_ganadores: ${documents.length}`,
    );
    this.#ctx.events.emit("winners.sent", { agency, count: documents.length });
    return { t: "winners.ok", agency, documents };
  }

  #draw(): void {
    const winners = this.#store.draw(this.#winning);
    console.log("action: sorteo | result: success");
    this.#ctx.events.emit("draw", { winners, winning_number: this.#winning });
    for (const w of this.#waiting.splice(0)) {
      w.session.reply(w.request, this.#winnersReply(w.agency));
    }
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

function badBet(seq: number, index: number, problem: string): ProtocolError {
  return new ProtocolError(
    "bad_bet",
    `Cannot store batch ${seq}: bet ${index}: ${problem}; nothing of the batch was stored`,
    { index, seq },
  );
}

/** The lottery server role. */
export const lotteryServerRole: RoleDefinition = {
  name: "lottery-server",
  summary:
    "lottery: stores agencies' bets in batches, draws when all are done, tells each its winners",
  peers: "optional",
  defaultPort: 7601,
  options: [
    {
      flags: "--agencies <n>",
      description: "how many agencies take part (the draw waits for all)",
      kind: "int",
    },
    {
      flags: "--winning-number <n>",
      description: "the number that wins",
      default: DEFAULT_WINNING_NUMBER,
      kind: "int",
    },
  ],
  examples: [
    "peerd --role lottery-server --name lottery --peers peers.json --agencies 5",
    "peerd ctl 127.0.0.1:7601 status",
  ],
  async run(ctx) {
    const agencies = ctx.options.agencies as number | undefined;
    if (agencies === undefined || agencies < 1) {
      throw new UsageError("--agencies must be given, ≥ 1");
    }
    const winning = Number(ctx.options.winningNumber);
    if (!Number.isInteger(winning) || winning < 0 || winning > 9999) {
      throw new UsageError("--winning-number must be an integer 0..9999");
    }
    prepareDataDir(ctx.dataDir);
    const store = new LotteryStore(`${ctx.dataDir}/lottery.db`);
    try {
      const lottery = new LotteryServer(ctx, store, agencies, winning);
      const server = startNodeServer(ctx, {
        handlers: {
          echo: (msg) => ({ t: "echo.ok", data: msg.data }),
          bets: (msg, s) => lottery.bets(msg, s),
          done: (msg) => lottery.done(msg),
          winners: (msg, s) => lottery.winners(msg, s),
        },
        ctl: { status: () => lottery.status() },
      });
      try {
        ctx.events.emit("ready", { listen: `${ctx.listen.hostname}:${server.port}`, agencies });
        ctx.log.info(`listening on ${ctx.listen.hostname}:${server.port} for ${agencies} agencies`);
        await aborted(ctx.signal);
        lottery.flush(); // finish the batches in progress before closing
      } finally {
        await server.close();
      }
      console.log("action: shutdown | result: success");
    } finally {
      store.close();
    }
    return 0;
  },
};
