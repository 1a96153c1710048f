/**
 * `peerd --role leader`: the whole job. It embeds the queue engine on its port (or uses
 * `--queue HOST:PORT`), optionally spawns N followers (`--spawn N`), grants one turn at a
 * time to a pending follower chosen at random, grants the next only after the holder's
 * value went through the fanout (or the turn timed out), then collects every follower's
 * list, prints them and the verdict: `IT WORKS!` (exit 0) or `FAILED: …` (exit 1).
 *
 * @module
 */
import { AmqpClient } from "../queue/mod.ts";
import { parseHostPort } from "../config/mod.ts";
import {
  defineRole,
  linkSecurity,
  peerdCommand,
  type RoleContext,
  startNodeServer,
  UsageError,
} from "../process/mod.ts";
import {
  LocalChannel,
  QueueClient,
  queueCtlCommands,
  QueueEngine,
  type QueueMessage,
  queueService,
  queueStatus,
} from "../queue/mod.ts";
import type { FrameServer } from "../wire/mod.ts";
import { formatList } from "./follower.ts";
import {
  declareExchanges,
  decodeJob,
  DIRECT_EXCHANGE,
  encodeJob,
  FANOUT_EXCHANGE,
  grantKey,
  type JobChannel,
  LEADER_QUEUE,
  MAX_VALUE,
} from "./protocol.ts";

/** Waits until `check()` is true, `ms` passes, or `signal` aborts; resolves with check(). */
function waitFor(
  check: () => boolean,
  ms: number,
  signal: AbortSignal,
  wake: { notify?: () => void },
): Promise<boolean> {
  if (check()) return Promise.resolve(true);
  return new Promise((resolve) => {
    const finish = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", finish);
      wake.notify = undefined;
      resolve(check());
    };
    const timer = setTimeout(finish, ms);
    signal.addEventListener("abort", finish, { once: true });
    wake.notify = () => {
      if (check()) finish();
    };
  });
}

function byId(a: string, b: string): number {
  return a.localeCompare(b, "en", { numeric: true });
}

/** Reads a spawned follower's stdout and re-emits its JSON events as they are. */
async function relayEvents(ctx: RoleContext, stream: ReadableStream<Uint8Array>): Promise<void> {
  const decoder = new TextDecoder();
  let partial = "";
  try {
    for await (const chunk of stream) {
      const lines = (partial + decoder.decode(chunk, { stream: true })).split("\n");
      partial = lines.pop() ?? "";
      for (const line of lines) {
        if (!line.startsWith("{")) continue;
        try {
          const rec = JSON.parse(line);
          if (rec && typeof rec.ev === "string") ctx.events.emit(rec.ev, rec);
        } catch {
          // not an event line
        }
      }
    }
  } catch {
    // child gone
  }
}

/** The leader role. */
export const leaderRole = defineRole({
  name: "leader",
  summary: "leader/follower job: grants turns at random, checks every follower's list",
  peers: "optional",
  defaultPort: 7510,
  options: {
    spawn: { type: "int", min: 1, max: 1000, help: "start n follower processes here" },
    followers: {
      type: "int",
      min: 1,
      max: 1000,
      help: "number of followers to expect (started elsewhere)",
    },
    queue: { type: "string", arg: "host:port", help: "use this queue server instead of embedding" },
    amqpUrl: {
      type: "string",
      arg: "url",
      help:
        "run the job through an AMQP 0-9-1 broker (peerd --amqp, RabbitMQ): amqp://user:pass@host:port/",
    },
    turnTimeout: {
      type: "int",
      arg: "ms",
      default: 3000,
      min: 1,
      help: "how long a holder may take to write before the turn moves on",
    },
    startTimeout: {
      type: "int",
      arg: "ms",
      default: 30000,
      min: 1,
      help: "how long to wait for every follower's request",
    },
    finalTimeout: {
      type: "int",
      arg: "ms",
      default: 10000,
      min: 1,
      help: "how long to wait for the followers' final lists",
    },
    writeDelay: {
      type: "int",
      arg: "ms",
      default: 0,
      min: 0,
      help: "spawned followers: work done while holding the turn",
    },
  },
  examples: [
    "peerd --role leader --spawn 8",
    "peerd --role leader --followers 3 --listen 0.0.0.0:7510",
    "peerd --role follower --name f1 --queue 127.0.0.1:7510",
    "peerd --role leader --spawn 4 --amqp-url amqp://guest:guest@127.0.0.1:5672/",
  ],
  async run(ctx): Promise<number> {
    const { spawn, turnTimeout, startTimeout, finalTimeout, queue: remote, amqpUrl } = ctx.options;
    const n = spawn ?? ctx.options.followers;
    if (n === undefined) throw new UsageError("--spawn N or --followers N (1..1000) is required");

    const requested = new Set<string>();
    const pending: string[] = [];
    const finals = new Map<string, number[]>();
    const dead = new Set<string>();
    const exited = new Set<string>();
    const wake: { notify?: () => void } = {};
    let turn = 0;
    let holder = "";
    let writes = 0;
    let phase = "starting";
    const written = new Map<number, number>();

    let engine: QueueEngine | undefined;
    let server: FrameServer;
    let channel: JobChannel;
    const jobStatus = () => ({
      phase,
      followers: n,
      requested: requested.size,
      turn,
      holder,
      writes,
      finals: finals.size,
    });
    if (amqpUrl) {
      server = startNodeServer(ctx, { handlers: {}, ctl: { status: jobStatus } });
      try {
        channel = await AmqpClient.connect(amqpUrl, { signal: ctx.signal, name: ctx.name });
      } catch (err) {
        await server.close();
        ctx.log.error(`Cannot reach the AMQP broker at ${amqpUrl}: ${(err as Error).message}`);
        return 1;
      }
    } else if (remote) {
      server = startNodeServer(ctx, { handlers: {}, ctl: { status: jobStatus } });
      try {
        channel = await QueueClient.connect(parseHostPort(remote, "--queue"), {
          name: ctx.name,
          role: "leader",
          ...linkSecurity(ctx),
        });
      } catch (err) {
        await server.close();
        ctx.log.error(`Cannot reach the queue at ${remote}: ${(err as Error).message}`);
        return 1;
      }
    } else {
      const eng = engine = new QueueEngine({ onEvent: (ev, f) => ctx.events.emit(ev, f) });
      const service = queueService(eng);
      try {
        server = startNodeServer(ctx, {
          handlers: service.handlers,
          onSession: service.onSession,
          onSessionClose: service.onSessionClose,
          ctl: {
            ...queueCtlCommands(eng),
            status: () => ({ ...jobStatus(), queue: queueStatus(eng) }),
          },
        });
      } catch (err) {
        eng.close();
        throw err;
      }
      channel = new LocalChannel(eng, "leader");
    }
    const queueAddr = amqpUrl ?? remote ??
      `${ctx.listen.hostname === "0.0.0.0" ? "127.0.0.1" : ctx.listen.hostname}:${server.port}`;
    const children: Array<{ id: string; child: Deno.ChildProcess; relay: Promise<void> }> = [];
    try {
      await declareExchanges(channel);
      await channel.assertQueue(LEADER_QUEUE, { durable: false });
      await channel.purgeQueue(LEADER_QUEUE);
      await channel.bindQueue(LEADER_QUEUE, DIRECT_EXCHANGE, "request");
      await channel.bindQueue(LEADER_QUEUE, DIRECT_EXCHANGE, "final");
      const { queue: watch } = await channel.assertQueue("", { durable: false, exclusive: true });
      await channel.bindQueue(watch, FANOUT_EXCHANGE);
      await channel.consume(LEADER_QUEUE, (m: QueueMessage) => {
        const job = decodeJob(m);
        if (job?.type === "request" && typeof job.id === "string") {
          if (!requested.has(job.id)) {
            requested.add(job.id);
            pending.push(job.id);
          }
        } else if (job?.type === "final" && typeof job.id === "string") {
          finals.set(job.id, Array.isArray(job.values) ? job.values : []);
        }
        wake.notify?.();
      }, { noAck: true });
      await channel.consume(watch, (m: QueueMessage) => {
        const job = decodeJob(m);
        if (job?.type === "write" && job.turn === turn && job.follower === holder) {
          written.set(job.turn, job.value);
          wake.notify?.();
        }
      }, { noAck: true });
      ctx.events.emit("ready", {
        listen: `${ctx.listen.hostname}:${server.port}`,
        queue: queueAddr,
        followers: n,
      });
      ctx.log.info(
        `leader on ${ctx.listen.hostname}:${server.port}, queue ${queueAddr}, ${n} followers`,
      );

      if (spawn) {
        for (let i = 1; i <= spawn; i++) {
          const id = `f${i}`;
          const args = [
            "--role",
            "follower",
            "--name",
            id,
            amqpUrl ? "--amqp-url" : "--queue",
            queueAddr,
            "--listen",
            "127.0.0.1:0",
            "--events",
            "-",
            "--log-level",
            ctx.logLevel,
            "--write-delay",
            String(ctx.options.writeDelay),
          ];
          const env: Record<string, string> = {};
          if (ctx.secret) env.PEERD_SECRET = ctx.secret;
          const tls = ctx.tlsFiles ?? {};
          if (tls.tlsCert) env.PEERD_TLS_CERT = tls.tlsCert;
          if (tls.tlsKey) env.PEERD_TLS_KEY = tls.tlsKey;
          if (tls.tlsCa) env.PEERD_TLS_CA = tls.tlsCa;
          const child = peerdCommand(args, {
            stdin: "null",
            stdout: "piped",
            stderr: "inherit",
            env,
          }).spawn();
          child.status.then(() => {
            exited.add(id);
            wake.notify?.();
          });
          children.push({ id, child, relay: relayEvents(ctx, child.stdout) });
        }
      }

      phase = "waiting for requests";
      const allAsked = await waitFor(
        () => requested.size + [...exited].filter((id) => !requested.has(id)).length >= n,
        startTimeout,
        ctx.signal,
        wake,
      );
      if (ctx.signal.aborted) return 0;
      if (!allAsked || requested.size < n) {
        ctx.log.warn(`only ${requested.size} of ${n} followers asked for a turn; going on`);
      }
      phase = "granting";
      while (pending.length > 0 && !ctx.signal.aborted) {
        const pick = crypto.getRandomValues(new Uint32Array(1))[0] % pending.length;
        const id = pending.splice(pick, 1)[0];
        turn++;
        holder = id;
        const t = turn;
        channel.publish(FANOUT_EXCHANGE, "", encodeJob({ type: "turn", turn: t, follower: id }));
        ctx.events.emit("grant", { follower: id, turn: t });
        channel.publish(DIRECT_EXCHANGE, grantKey(id), encodeJob({ type: "grant", turn: t }));
        const ok = await waitFor(
          () => written.has(t) || exited.has(id),
          turnTimeout,
          ctx.signal,
          wake,
        );
        if (ok && written.has(t)) {
          writes++;
          ctx.events.emit("turn.done", { follower: id, turn: t, value: written.get(t) });
        } else if (!ctx.signal.aborted) {
          dead.add(id);
          ctx.events.emit("grant.timeout", { follower: id, turn: t, timeout_ms: turnTimeout });
          ctx.log.warn(`follower ${id} did not write within ${turnTimeout} ms; next turn`);
        }
      }
      if (ctx.signal.aborted) return 0;
      holder = "";
      channel.publish(FANOUT_EXCHANGE, "", encodeJob({ type: "end", turns: turn, writes }));
      phase = "collecting lists";
      const expected = () =>
        [...requested].filter((id) => !dead.has(id) && !(exited.has(id) && !finals.has(id)));
      await waitFor(
        () => expected().every((id) => finals.has(id)),
        finalTimeout,
        ctx.signal,
        wake,
      );
      if (ctx.signal.aborted) return 0;
      phase = "done";
      return verdict(ctx, n, requested, finals, dead);
    } finally {
      for (const c of children) {
        const timer = setTimeout(() => {
          try {
            c.child.kill("SIGKILL");
          } catch {
            // gone
          }
        }, ctx.signal.aborted ? 0 : 5_000);
        if (ctx.signal.aborted) {
          try {
            c.child.kill("SIGTERM");
          } catch {
            // gone
          }
        }
        await c.child.status;
        clearTimeout(timer);
        await c.relay;
      }
      await channel.close();
      await server.close();
      engine?.close();
    }
  },
});

function verdict(
  ctx: RoleContext,
  n: number,
  requested: Set<string>,
  finals: Map<string, number[]>,
  dead: Set<string>,
): number {
  const ids = [...new Set([...requested, ...finals.keys()])].sort(byId);
  const problems: string[] = [];
  for (const id of ids) {
    const values = finals.get(id);
    if (values) console.log(formatList(id, values));
    else {
      console.log(`follower ${id}: no list (${dead.has(id) ? "turn timed out" : "no answer"})`);
    }
  }
  if (requested.size < n) {
    problems.push(`only ${requested.size} of ${n} followers asked for a turn`);
  }
  if (dead.size > 0) {
    problems.push(`${[...dead].sort(byId).join(", ")} did not write in time`);
  }
  const lists = ids.flatMap((id) => finals.has(id) ? [finals.get(id)!] : []);
  const missing = ids.filter((id) => !finals.has(id) && !dead.has(id));
  if (missing.length) problems.push(`no list from ${missing.join(", ")}`);
  const first = lists[0] ?? [];
  if (lists.some((l) => l.length !== first.length || l.some((v, i) => v !== first[i]))) {
    problems.push("the lists differ");
  }
  if (lists.some((l) => l.length !== n)) {
    problems.push(
      `lists hold ${[...new Set(lists.map((l) => l.length))].join("/")} values, not ${n}`,
    );
  }
  if (lists.some((l) => l.some((v) => !Number.isInteger(v) || v < 0 || v > MAX_VALUE))) {
    problems.push(`a value is outside 0..${MAX_VALUE}`);
  }
  const ok = problems.length === 0 && lists.length === n;
  ctx.events.emit("verdict", { ok, followers: n, lists: lists.length, problems });
  if (ok) {
    console.log("IT WORKS!");
    return 0;
  }
  console.log(`FAILED: ${problems.join("; ")}`);
  ctx.log.error(`job failed: ${problems.join("; ")}`);
  return 1;
}
