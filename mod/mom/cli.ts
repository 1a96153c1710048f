/**
 * `peerd mom [--daemon HOST:PORT] [--user ID] <command>`: the MOM for people and scripts.
 *
 * Commands: `create`, `attach ID`, `subscribe T` (`--own` to get one's own publications),
 * `unsubscribe T`, `publish T TEXT`, `receive [--timeout S] [--count N]` (one JSON line
 * per message: `topic`, `payload`, `from`, `id`), `destroy`. With no command it reads
 * commands from stdin (a prompt on a terminal), also accepting the original's
 * `S topic`, `U topic`, `P topic text`, `R`, `E`.
 *
 * @module
 */
import type { Command } from "commander";
import { ConfigError, loadTlsFiles, parseHostPort, type TlsFileOptions } from "../config/mod.ts";
import type { CommandDefinition } from "../process/mod.ts";
import type { DialAddress } from "../wire/mod.ts";
import { MomClient, MomError, type MomMessage, type MomUser } from "./client.ts";

const decoder = new TextDecoder();

/** Default daemon address when neither `--daemon` nor `PEERD_DAEMON` is given. */
export const DEFAULT_DAEMON = "127.0.0.1:7411";

class CliUsage extends Error {}

function messageLine(m: MomMessage): string {
  return JSON.stringify({
    topic: m.topic,
    payload: decoder.decode(m.payload),
    from: m.from,
    id: m.id,
  });
}

function parseAddress(text: string): DialAddress {
  if (text.startsWith("/") || text.startsWith("unix:")) return { path: text.replace(/^unix:/, "") };
  return parseHostPort(text, "--daemon");
}

function positive(text: string | undefined, what: string): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isFinite(n) || n < 0) {
    throw new CliUsage(`${what} must be a number ≥ 0, got "${text}"`);
  }
  return n;
}

interface MomOptions extends TlsFileOptions {
  daemon?: string;
  user?: string;
  secret?: string;
  timeout?: string;
  count?: string;
  own?: boolean;
}

/** One interactive or one-shot session: a daemon connection and the current user. */
class MomShell {
  readonly client: MomClient;
  user: MomUser | undefined;

  constructor(client: MomClient, user: number | undefined) {
    this.client = client;
    this.user = user === undefined ? undefined : client.user(user);
  }

  #me(): MomUser {
    if (!this.user) throw new CliUsage("no user: run create (or attach ID), or pass --user ID");
    return this.user;
  }

  /** Runs one command; prints results on stdout; returns false to end the session. */
  async run(words: string[], rest: string, opts: MomOptions): Promise<boolean> {
    const [word, ...args] = words;
    const cmd = word.toLowerCase();
    const need = (n: number, usage: string) => {
      if (args.length < n) throw new CliUsage(`usage: ${usage}`);
    };
    switch (cmd) {
      case "create": {
        this.user = await this.client.create();
        console.log(JSON.stringify({ user: this.user.id }));
        return true;
      }
      case "attach": {
        need(1, "attach ID");
        const id = Number(args[0]);
        if (!Number.isInteger(id) || id < 1) {
          throw new CliUsage(`attach: "${args[0]}" is not a user id`);
        }
        this.user = await this.client.attach(id);
        console.log(JSON.stringify({ user: id }));
        return true;
      }
      case "s":
      case "subscribe":
        need(1, "subscribe TOPIC");
        await this.#me().subscribe(args[0], { own: opts.own || args[1] === "--own" });
        console.log(JSON.stringify({ ok: true, subscribed: args[0] }));
        return true;
      case "u":
      case "unsubscribe":
        need(1, "unsubscribe TOPIC");
        await this.#me().unsubscribe(args[0]);
        console.log(JSON.stringify({ ok: true, unsubscribed: args[0] }));
        return true;
      case "p":
      case "publish": {
        need(1, "publish TOPIC TEXT");
        const id = await this.#me().publish(args[0], rest);
        console.log(JSON.stringify({ id, topic: args[0] }));
        return true;
      }
      case "r":
      case "receive": {
        const me = this.#me();
        const count = positive(opts.count, "--count");
        const timeoutS = positive(args[0] ?? opts.timeout, "timeout") ??
          (cmd === "r" || count !== undefined ? 5 : 0);
        const deadline = performance.now() + timeoutS * 1000;
        let got = 0;
        const want = cmd === "r" && count === undefined ? 1 : count;
        for (let i = 0; i < 1_000_000; i++) {
          const left = Math.max(0, deadline - performance.now());
          const batch = await me.receiveBatch({
            timeout: got > 0 && want === undefined ? 0 : left,
            max: want === undefined ? 2_000 : want - got,
          });
          for (const m of batch) console.log(messageLine(m));
          got += batch.length;
          if (batch.length === 0 || (want !== undefined && got >= want)) break;
        }
        await me.ack();
        if (want !== undefined && got < want) {
          console.error(`peerd mom: received ${got} of ${want} within ${timeoutS} s`);
          Deno.exitCode = 1;
        }
        return true;
      }
      case "destroy": {
        const me = this.#me();
        await me.destroy();
        console.log(JSON.stringify({ ok: true, destroyed: me.id }));
        this.user = undefined;
        return true;
      }
      case "e":
      case "exit":
      case "quit":
        return false;
      case "help":
      case "?":
        console.log(
          "commands: create | attach ID | subscribe T (S T) | unsubscribe T (U T) | " +
            "publish T TEXT (P T TEXT) | receive [S] (R) | destroy | exit (E)",
        );
        return true;
      default:
        throw new CliUsage(`unknown command "${word}" (try help)`);
    }
  }
}

/** Splits a command line into words and the text after the second word (for publish). */
function splitLine(line: string): { words: string[]; rest: string } {
  const words = line.trim().split(/\s+/).filter(Boolean);
  const m = /^\s*\S+\s+\S+\s?(.*)$/s.exec(line);
  return { words, rest: m ? m[1] : "" };
}

async function readLines(onLine: (line: string) => Promise<boolean>, prompt: () => string) {
  const interactive = Deno.stdin.isTerminal();
  const enc = new TextEncoder();
  if (interactive) Deno.stdout.writeSync(enc.encode(prompt()));
  let pending = "";
  for await (const chunk of Deno.stdin.readable.pipeThrough(new TextDecoderStream())) {
    pending += chunk;
    let nl: number;
    while ((nl = pending.indexOf("\n")) >= 0) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      if (!(await onLine(line))) return;
      if (interactive) Deno.stdout.writeSync(enc.encode(prompt()));
    }
  }
  if (pending.trim()) await onLine(pending);
}

async function momAction(command: string[], opts: MomOptions): Promise<void> {
  let client: MomClient | undefined;
  try {
    const address = parseAddress(opts.daemon ?? DEFAULT_DAEMON);
    let user: number | undefined;
    if (opts.user !== undefined) {
      user = Number(opts.user);
      if (!Number.isInteger(user) || user < 1) {
        throw new CliUsage(`--user "${opts.user}" is not a user id`);
      }
    }
    if (command.length > 0) {
      const cmd = command[0].toLowerCase();
      const known = [
        "create",
        "attach",
        "subscribe",
        "unsubscribe",
        "publish",
        "receive",
        "destroy",
        "s",
        "u",
        "p",
        "r",
      ];
      if (!known.includes(cmd)) throw new CliUsage(`unknown command "${command[0]}"`);
      if (user === undefined && !["create", "attach"].includes(cmd)) {
        throw new CliUsage(`${command[0]} needs --user ID`);
      }
    }
    client = await MomClient.connect(address, {
      name: "mom-cli",
      secret: opts.secret,
      tls: loadTlsFiles(opts, { node: false }),
    });
    const shell = new MomShell(client, user);
    if (command.length > 0) {
      const rest = command.slice(2).join(" ");
      await shell.run(command, rest, opts);
      Deno.exitCode ??= 0;
      return;
    }
    let failed = false;
    await readLines(async (line) => {
      const trimmed = line.trim();
      if (!trimmed || trimmed.startsWith("#")) return true;
      const { words, rest } = splitLine(trimmed);
      try {
        return await shell.run(words, rest, { ...opts, count: undefined, timeout: undefined });
      } catch (err) {
        failed = true;
        console.error(`peerd mom: ${describe(err)}`);
        return true;
      }
    }, () => `mom${shell.user ? `[${shell.user.id}]` : ""}> `);
    Deno.exitCode = failed ? 1 : (Deno.exitCode ?? 0);
  } catch (err) {
    console.error(`peerd mom: ${describe(err)}`);
    Deno.exitCode = err instanceof CliUsage || err instanceof ConfigError ? 2 : 1;
  } finally {
    await client?.close();
  }
}

function describe(err: unknown): string {
  if (err instanceof MomError) return `${err.code}: ${err.message}`;
  return err instanceof Error ? err.message : String(err);
}

/** The `mom` subcommand. */
export const momCommand: CommandDefinition = {
  name: "mom",
  summary: "MOM client: create a user, subscribe, publish, receive (or a prompt on stdin)",
  register(program: Command): void {
    program
      .command("mom")
      .description(
        "MOM client: create | attach ID | subscribe T | unsubscribe T | publish T TEXT | " +
          "receive | destroy; no command reads commands from stdin (S/U/P/R/E too)",
      )
      .argument("[command...]", "the command and its arguments")
      .option(
        "--daemon <address>",
        `the daemon, host:port or a socket path (default ${DEFAULT_DAEMON})`,
      )
      .option("--user <id>", "the user to act as")
      .option("--timeout <seconds>", "receive: how long to wait")
      .option("--count <n>", "receive: stop after n messages (exit 1 if fewer arrive)")
      .option("--own", "subscribe: also receive this user's own publications")
      .option("--secret <secret>", "cluster secret", Deno.env.get("PEERD_SECRET"))
      .option("--tls-ca <file>", "dial TLS, verifying the server against this CA (PEM)")
      .option("--tls-cert <file>", "client certificate (PEM) for mutual TLS")
      .option("--tls-key <file>", "private key of --tls-cert (PEM)")
      .action(async (command: string[], opts: MomOptions) => {
        await momAction(command, opts);
      });
  },
};
