/**
 * `peerd ratings [--fe HOST:PORT] --user ID [--session FILE] <command>`: the ratings
 * client. One-shot commands (`average MOVIE`, `create MOVIE RATING`, `get MOVIE`,
 * `update MOVIE RATING`, `delete MOVIE`, `all`) or, with no command on a terminal, the
 * original's numbered menu. The client's timestamp is kept in the session file between
 * invocations and sent with every request, so a user who moves to another front end
 * never reads older data.
 *
 * @module
 */
import type { Command } from "commander";
import {
  ConfigError,
  type HostPort,
  loadPeersFile,
  loadTlsFiles,
  parseHostPort,
  type TlsFileOptions,
} from "../config/mod.ts";
import type { CommandDefinition } from "../process/mod.ts";
import {
  ConnectionClosedError,
  type Message,
  ProtocolError,
  RemoteError,
  RpcClient,
  type TlsConfig,
  WireError,
} from "../wire/mod.ts";
import { merge, parseVectorTs, type VectorTs } from "./vector_ts.ts";

/** A usage problem: exit code 2. */
class ClientUsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ClientUsageError";
  }
}

/** The client's timestamp, kept in a JSON file between invocations. */
export class RatingsSession {
  readonly path: string;
  readonly user: number;
  prev: VectorTs;

  constructor(path: string, user: number, prev: VectorTs = {}) {
    this.path = path;
    this.user = user;
    this.prev = prev;
  }

  /** Reads the session file (a missing file is an empty session). */
  static async open(path: string, user: number): Promise<RatingsSession> {
    let text: string;
    try {
      text = await Deno.readTextFile(path);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return new RatingsSession(path, user);
      throw new ConfigError(`--session ${path}: cannot read: ${(err as Error).message}`);
    }
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch {
      throw new ConfigError(`--session ${path}: not JSON; delete it to start a new session`);
    }
    const users = (doc as { users?: Record<string, unknown> })?.users ?? {};
    const prev = parseVectorTs(users[String(user)]);
    if (!prev) throw new ConfigError(`--session ${path}: users.${user} is not a timestamp`);
    return new RatingsSession(path, user, prev);
  }

  /** Merges `ts` into the session's timestamp. */
  learn(ts: unknown): void {
    const parsed = parseVectorTs(ts);
    if (parsed) this.prev = merge(this.prev, parsed);
  }

  /**
   * Writes the session file atomically, keeping other users' entries; an exclusive lock on
   * `FILE.lock` serialises concurrent clients, and a user's timestamp is merged, never lowered.
   */
  async save(): Promise<void> {
    using lock = await Deno.open(`${this.path}.lock`, { create: true, write: true });
    await lock.lock(true);
    try {
      let users: Record<string, unknown> = {};
      try {
        users = JSON.parse(await Deno.readTextFile(this.path)).users ?? {};
      } catch {
        // new file
      }
      const stored = parseVectorTs(users[String(this.user)]) ?? {};
      this.prev = merge(stored, this.prev);
      users[String(this.user)] = this.prev;
      const tmp = `${this.path}.${Deno.pid}.tmp`;
      await Deno.writeTextFile(tmp, JSON.stringify({ users }, null, 2) + "\n");
      await Deno.rename(tmp, this.path);
    } finally {
      await lock.unlock();
    }
  }
}

function parseMovie(s: string | undefined): number {
  if (s === undefined) throw new ClientUsageError("missing MOVIE (a movie id)");
  if (!/^\d+$/.test(s) || Number(s) < 1) {
    throw new ClientUsageError(`MOVIE must be a positive integer id, got "${s}"`);
  }
  return Number(s);
}

function parseRating(s: string | undefined): number {
  if (s === undefined) throw new ClientUsageError("missing RATING (0.5..5.0)");
  const n = Number(s);
  if (s.trim() === "" || !Number.isFinite(n)) {
    throw new ClientUsageError(`RATING must be a number 0.5..5.0, got "${s}"`);
  }
  return n;
}

/** Turns `command args…` into a request; throws a usage error naming what is wrong. */
export function parseRatingsCommand(user: number, command: string, args: string[]): Message {
  const want = (n: number) => {
    if (args.length > n) {
      throw new ClientUsageError(`${command}: too many arguments (${args.slice(n).join(" ")})`);
    }
  };
  switch (command) {
    case "average":
    case "get":
      want(1);
      return { t: "ratings.query", q: command, user, movie: parseMovie(args[0]) };
    case "all":
      want(0);
      return { t: "ratings.query", q: "all", user };
    case "create":
    case "update":
      want(2);
      return {
        t: "ratings.update",
        kind: command,
        user,
        movie: parseMovie(args[0]),
        rating: parseRating(args[1]),
      };
    case "delete":
      want(1);
      return { t: "ratings.update", kind: "delete", user, movie: parseMovie(args[0]) };
    default:
      throw new ClientUsageError(
        `unknown command "${command}"; commands are average, create, get, update, delete, all`,
      );
  }
}

/** Formats a reply for people. */
export function formatReply(reply: Message): string[] {
  const named = (r: Message | Record<string, unknown>) => `${r.title} [movie ${r.movie}]`;
  const num = (v: unknown) => (typeof v === "number" ? v.toFixed(1) : String(v));
  if (reply.t === "ratings.result") {
    if (reply.q === "average") {
      return reply.average === null || reply.average === undefined
        ? [`${named(reply)} has no ratings`]
        : [
          `Average rating of ${named(reply)}: ${
            (reply.average as number).toFixed(2)
          } from ${reply.count} ratings`,
        ];
    }
    if (reply.q === "get") {
      return reply.rating === null || reply.rating === undefined
        ? [`User ${reply.user} has not rated ${named(reply)}`]
        : [`User ${reply.user} rated ${named(reply)}: ${num(reply.rating)}`];
    }
    const list = (reply.ratings as Array<Record<string, unknown>>) ?? [];
    return [
      ...list.map((r) => `${named(r)}: ${num(r.rating)}`),
      `User ${reply.user} has ${list.length} rating${list.length === 1 ? "" : "s"}`,
    ];
  }
  if (reply.t === "ratings.updated") {
    const what = reply.kind === "create"
      ? "Created"
      : reply.kind === "update"
      ? "Updated"
      : "Deleted";
    const tail = reply.kind === "delete" ? "" : ` = ${num(reply.rating)}`;
    return [
      `${what}: user ${reply.user}, ${named(reply)}${tail}${
        reply.duplicate ? " (already done)" : ""
      }`,
    ];
  }
  return [JSON.stringify(reply)];
}

/**
 * A connection to a front end. A request that loses its connection is sent again with the
 * same update id (so it is applied once); when a front end cannot be reached the next one
 * of the list is tried — the client's timestamp travels with it, so it never reads older
 * data there.
 */
export class RatingsClient implements AsyncDisposable {
  readonly addresses: HostPort[];
  #current = 0;
  #client: RpcClient | undefined;
  #secret?: string;
  #tls?: TlsConfig;

  constructor(address: HostPort | HostPort[], secret?: string, tls?: TlsConfig) {
    this.addresses = Array.isArray(address) ? address : [address];
    if (this.addresses.length === 0) throw new Error("RatingsClient needs a front end address");
    this.#secret = secret;
    this.#tls = tls;
  }

  /** The front end currently used. */
  get address(): HostPort {
    return this.addresses[this.#current];
  }

  /** Sends `msg` with the session's timestamp; merges the reply's timestamp into it. */
  async send(session: RatingsSession, msg: Message, timeoutMs = 20_000): Promise<Message> {
    const request: Message = { ...msg, prev: session.prev };
    if (request.t === "ratings.update") {
      request.uid ??= crypto.randomUUID();
      request.time ??= Math.floor(Date.now() / 1000);
    }
    let lastErr: unknown;
    let unreachable = 0;
    const n = this.addresses.length;
    for (let attempt = 0; attempt < 3 * n && unreachable < n; attempt++) {
      let connected = this.#client !== undefined;
      try {
        if (!this.#client) {
          this.#client = await RpcClient.connect(this.address, {
            role: "client",
            name: `user-${session.user}`,
            secret: this.#secret,
            tls: this.#tls,
            timeoutMs: 3_000,
          });
          connected = true;
        }
        const reply = await this.#client.request(request, { timeoutMs });
        session.learn(reply.ts);
        return reply;
      } catch (err) {
        if (err instanceof RemoteError || err instanceof ProtocolError) throw err;
        lastErr = err;
        await this.#client?.close();
        this.#client = undefined;
        if (!connected || !(err instanceof ConnectionClosedError || err instanceof WireError)) {
          unreachable++;
          this.#current = (this.#current + 1) % n;
        }
      }
    }
    throw lastErr;
  }

  /** Closes the connection. */
  async close(): Promise<void> {
    await this.#client?.close();
    this.#client = undefined;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

function defaultFe(peers?: string): string {
  const path = peers ?? "peers.json";
  try {
    const cluster = loadPeersFile(path);
    const fes = cluster.nodes.filter((n) => n.role === "frontend");
    if (fes.length) return fes.map((n) => `${n.hostname}:${n.port}`).join(",");
  } catch (err) {
    if (peers) throw err;
  }
  return "127.0.0.1:7711";
}

const MENU = [
  "1) average rating of a movie",
  "2) create a rating",
  "3) get your rating of a movie",
  "4) update a rating",
  "5) delete a rating",
  "6) all your ratings",
  "0) quit",
];
const MENU_COMMANDS = ["", "average", "create", "get", "update", "delete", "all"];

async function* stdinLines(): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let buf = "";
  for await (const chunk of Deno.stdin.readable) {
    buf += decoder.decode(chunk, { stream: true });
    let i;
    while ((i = buf.indexOf("\n")) >= 0) {
      yield buf.slice(0, i).trim();
      buf = buf.slice(i + 1);
    }
  }
  if (buf.trim()) yield buf.trim();
}

async function runMenu(client: RatingsClient, session: RatingsSession): Promise<number> {
  const lines = stdinLines();
  const ask = async (prompt: string): Promise<string | undefined> => {
    await Deno.stdout.write(new TextEncoder().encode(prompt));
    const next = await lines.next();
    return next.done ? undefined : next.value;
  };
  console.log(
    `Movie ratings for user ${session.user} (front end ${client.address.hostname}:${client.address.port})`,
  );
  for (let i = 0; i < 10_000; i++) {
    console.log(MENU.join("\n"));
    const choice = await ask("choice> ");
    if (choice === undefined || choice === "0" || choice === "q") break;
    const command = MENU_COMMANDS[Number(choice)];
    if (!command || !/^\d$/.test(choice)) {
      console.log(`"${choice}" is not on the menu`);
      continue;
    }
    const args: string[] = [];
    if (command !== "all") {
      const movie = await ask("movie id> ");
      if (movie === undefined) break;
      args.push(movie);
    }
    if (command === "create" || command === "update") {
      const rating = await ask("rating (0.5..5.0)> ");
      if (rating === undefined) break;
      args.push(rating);
    }
    try {
      const reply = await client.send(session, parseRatingsCommand(session.user, command, args));
      await session.save();
      for (const line of formatReply(reply)) console.log(line);
    } catch (err) {
      console.log(`error: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  return 0;
}

/** The `ratings` subcommand. */
export const ratingsCommand: CommandDefinition = {
  name: "ratings",
  summary: "movie-ratings client: average, create, get, update, delete, all (or a menu)",
  register(program: Command): void {
    program
      .command("ratings")
      .description(
        "movie-ratings client: average MOVIE | create MOVIE RATING | get MOVIE | " +
          "update MOVIE RATING | delete MOVIE | all (no command on a terminal: numbered menu)",
      )
      .argument("[command]", "average, create, get, update, delete or all")
      .argument("[args...]", "MOVIE and RATING as the command needs")
      .option(
        "--fe <host:port,...>",
        "front ends, tried in order (default: the frontends in peers.json, else 127.0.0.1:7711)",
      )
      .option("--peers <file>", "peers file to find a front end in")
      .option("--user <id>", "your user id")
      .option(
        "--session <file>",
        "session file keeping your timestamp",
        ".peerd-ratings-session.json",
      )
      .option("--secret <secret>", "cluster secret")
      .option("--tls-ca <file>", "dial TLS, verifying the server against this CA (PEM)")
      .option("--tls-cert <file>", "client certificate (PEM) for mutual TLS")
      .option("--tls-key <file>", "private key of --tls-cert (PEM)")
      .option("--menu", "show the numbered menu even when stdin is not a terminal")
      .option("--json", "print the reply as JSON")
      .action(
        async (command: string | undefined, args: string[], opts: Record<string, unknown>) => {
          Deno.exitCode = await runRatings(command, args, opts);
        },
      );
  },
};

async function runRatings(
  command: string | undefined,
  args: string[],
  opts: Record<string, unknown>,
): Promise<number> {
  let session: RatingsSession;
  let client: RatingsClient;
  let msg: Message | undefined;
  try {
    const userText = String(opts.user ?? "");
    if (!/^\d+$/.test(userText) || Number(userText) < 1) {
      throw new ClientUsageError(`--user must be a positive integer user id, got "${userText}"`);
    }
    const user = Number(userText);
    const fe = String(opts.fe ?? defaultFe(opts.peers as string | undefined)).split(",")
      .map((a) => parseHostPort(a.trim(), "--fe"));
    if (command !== undefined) msg = parseRatingsCommand(user, command, args);
    else if (!opts.menu && !Deno.stdin.isTerminal()) {
      throw new ClientUsageError(
        "missing command (average, create, get, update, delete, all); the menu needs a terminal",
      );
    }
    session = await RatingsSession.open(String(opts.session), user);
    client = new RatingsClient(
      fe,
      opts.secret as string | undefined,
      loadTlsFiles(opts as TlsFileOptions, { node: false }),
    );
  } catch (err) {
    if (err instanceof ClientUsageError || err instanceof ConfigError) {
      console.error(`peerd ratings: ${err.message}`);
      return 2;
    }
    throw err;
  }
  try {
    if (!msg) return await runMenu(client, session);
    const reply = await client.send(session, msg);
    await session.save();
    if (opts.json) {
      const { rid: _rid, ...rest } = reply;
      console.log(JSON.stringify(rest));
    } else {
      for (const line of formatReply(reply)) console.log(line);
    }
    return 0;
  } catch (err) {
    if (err instanceof RemoteError) {
      console.error(`peerd ratings: ${err.code}: ${String(err.frame.message ?? "")}`);
    } else if (err instanceof ProtocolError) {
      console.error(`peerd ratings: ${err.code}: ${err.message}`);
    } else {
      console.error(
        `peerd ratings: Cannot reach front end ${
          client.addresses.map((a) => `${a.hostname}:${a.port}`).join(", ")
        }: ${err instanceof Error ? err.message : String(err)}`,
      );
    }
    return 1;
  } finally {
    await client.close();
  }
}
