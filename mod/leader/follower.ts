/**
 * `peerd --role follower --queue HOST:PORT`: one follower of the job. It binds its own
 * queue to the fanout exchange, asks the leader for a turn, writes one random value
 * 0..1000 to the fanout when granted, keeps every value of the announced turns, and at
 * the end sends its list to the leader and prints it.
 *
 * @module
 */
import { parseHostPort } from "../config/mod.ts";
import {
  aborted,
  defineRole,
  linkSecurity,
  type RoleContext,
  startNodeServer,
} from "../process/mod.ts";
import { AmqpClient } from "../queue/mod.ts";
import { QueueClient, type QueueMessage } from "../queue/mod.ts";
import { retryConnect } from "../wire/mod.ts";
import {
  declareExchanges,
  decodeJob,
  DIRECT_EXCHANGE,
  encodeJob,
  FANOUT_EXCHANGE,
  type FollowerChannel,
  grantKey,
  MAX_VALUE,
} from "./protocol.ts";

/** Formats a list as the job prints it: `follower <id>: [v1, v2, …]`. */
export function formatList(id: string, values: number[]): string {
  return `follower ${id}: [${values.join(", ")}]`;
}

function randomValue(): number {
  return crypto.getRandomValues(new Uint32Array(1))[0] % (MAX_VALUE + 1);
}

/**
 * Pacing of the first connection to the queue: 50 ms doubling to 500 ms, ±25 % jitter (it
 * grew by 50 ms a try before `Backoff`: 50, 100, 150 … 500; doubling reaches the cap in
 * four tries instead of nine, and the jitter spreads followers started together).
 */
const CONNECT_BACKOFF = { initialMs: 50, maxMs: 500 } as const;

/** Connects to the queue (or the AMQP broker), retrying until `timeoutMs` of failures. */
async function connectWithRetry(
  ctx: RoleContext,
  address: string,
  timeoutMs: number,
  amqpUrl?: string,
): Promise<FollowerChannel> {
  const addr = amqpUrl ? undefined : parseHostPort(address, "--queue");
  try {
    return await retryConnect<FollowerChannel>(
      () =>
        amqpUrl
          ? AmqpClient.connect(amqpUrl, { signal: ctx.signal, name: ctx.name })
          : QueueClient.connect(addr!, {
            name: ctx.name,
            role: "follower",
            ...linkSecurity(ctx),
            signal: ctx.signal,
          }),
      { backoff: CONNECT_BACKOFF, signal: ctx.signal, giveUpAfterMs: timeoutMs },
    );
  } catch (err) {
    throw new Error(
      `Cannot reach the queue at ${address}: ${err instanceof Error ? err.message : err}`,
      { cause: err },
    );
  }
}

/** The follower role. */
export const followerRole = defineRole({
  name: "follower",
  summary: "leader/follower job: a follower that writes one value when granted the turn",
  peers: "none",
  defaultPort: 0,
  options: {
    queue: { type: "string", arg: "host:port", help: "the leader's (or a queue server's) address" },
    amqpUrl: {
      type: "string",
      arg: "url",
      help: "run the job through an AMQP 0-9-1 broker instead (amqp://user:pass@host:port/)",
    },
    id: { type: "string", arg: "id", help: "follower id (default: --name)" },
    writeDelay: {
      type: "int",
      arg: "ms",
      default: 0,
      min: 0,
      help: "work done while holding the turn, before writing",
    },
    connectTimeout: {
      type: "int",
      arg: "ms",
      default: 15000,
      min: 1,
      help: "how long to keep trying to reach the queue",
    },
  },
  examples: [
    "peerd --role follower --name f1 --queue 127.0.0.1:7510",
    "peerd --role follower --name f1 --amqp-url amqp://guest:guest@127.0.0.1:5672/",
  ],
  async run(ctx): Promise<number> {
    const { amqpUrl, writeDelay } = ctx.options;
    const queueAddr = ctx.options.queue ?? amqpUrl;
    if (!queueAddr) {
      ctx.log.error("--queue HOST:PORT (the leader's address) or --amqp-url URL is required");
      return 2;
    }
    const id = ctx.options.id ?? ctx.name;
    const values: number[] = [];
    let turn = 0;
    let holder = "";
    let state = "connecting";
    const server = startNodeServer(ctx, {
      handlers: {},
      ctl: { status: () => ({ id, state, turn, values: values.length }) },
    });
    let ch: FollowerChannel | undefined;
    try {
      ch = await connectWithRetry(
        ctx,
        queueAddr,
        ctx.options.connectTimeout,
        amqpUrl,
      );
      const channel = ch;
      const ended = Promise.withResolvers<"end" | "closed">();
      channel.onClose = () => ended.resolve("closed");
      channel.onError = (err) => ctx.log.warn(`queue: ${err.message}`);
      await declareExchanges(channel);
      const { queue: valuesQueue } = await channel.assertQueue("", {
        durable: false,
        exclusive: true,
      });
      await channel.bindQueue(valuesQueue, FANOUT_EXCHANGE);
      await channel.consume(valuesQueue, (m: QueueMessage) => {
        const job = decodeJob(m);
        if (!job) return;
        if (job.type === "turn") {
          turn = job.turn;
          holder = job.follower;
        } else if (job.type === "write") {
          if (
            job.turn === turn && job.follower === holder && Number.isInteger(job.value) &&
            job.value >= 0 && job.value <= MAX_VALUE
          ) {
            values.push(job.value);
          } else {
            ctx.events.emit("write.ignored", { follower: job.follower, turn: job.turn });
          }
        } else if (job.type === "end") {
          ended.resolve("end");
        }
      }, { noAck: true });
      const grantQueue = `lf.grant.${id}`;
      await channel.assertQueue(grantQueue, { durable: false, exclusive: true });
      await channel.bindQueue(grantQueue, DIRECT_EXCHANGE, grantKey(id));
      await channel.consume(grantQueue, (m: QueueMessage) => {
        const job = decodeJob(m);
        if (job?.type !== "grant") return;
        state = "writing";
        const write = () => {
          if (channel.closed) return;
          const value = randomValue();
          ctx.events.emit("write", { follower: id, value, turn: job.turn });
          channel.publish(
            FANOUT_EXCHANGE,
            "",
            encodeJob({ type: "write", turn: job.turn, follower: id, value }),
          );
          state = "written";
        };
        if (writeDelay > 0) setTimeout(write, writeDelay);
        else write();
      }, { noAck: true });
      // ask for the turn; a request nobody takes (leader not bound yet) comes back: retry
      let returned = 0;
      channel.onReturn = () => {
        returned++;
        setTimeout(() => {
          if (!channel.closed && returned < 300) {
            channel.publish(DIRECT_EXCHANGE, "request", encodeJob({ type: "request", id }), {
              mandatory: true,
            });
          }
        }, 100);
      };
      channel.publish(DIRECT_EXCHANGE, "request", encodeJob({ type: "request", id }), {
        mandatory: true,
      });
      state = "waiting";
      ctx.events.emit("ready", { id, listen: `${ctx.listen.hostname}:${server.port}` });
      const how = await Promise.race([ended.promise, aborted(ctx.signal).then(() => "stop")]);
      if (how === "stop") return 0;
      if (how === "closed") {
        ctx.log.error(`Cannot finish: the queue at ${queueAddr} closed the connection`);
        return 1;
      }
      state = "done";
      ctx.events.emit("list.final", { follower: id, values });
      console.log(formatList(id, values));
      channel.publish(DIRECT_EXCHANGE, "final", encodeJob({ type: "final", id, values }));
      await channel.sync();
      return 0;
    } catch (err) {
      if (ctx.signal.aborted) return 0;
      ctx.log.error(err instanceof Error ? err.message : String(err));
      return 1;
    } finally {
      await ch?.close();
      await server.close();
    }
  },
});
