/**
 * A private RabbitMQ (Debian's `rabbitmq-server`) for tests that compare against it:
 * loopback only, free ports, its own config, data, logs, cookie and epmd (also on
 * loopback, on a private port), no plugins (no management listener), started and
 * stopped by PID. Start it once per test file: it takes a few seconds.
 *
 * @module
 */
import { freePort } from "../../mod/harness/mod.ts";
import { sleep } from "../../mod/wire/mod.ts";
import { stopProcess } from "../../mod/process/mod.ts";

/** How often the harness asks whether RabbitMQ answers AMQP yet. */
const RABBITMQ_POLL_MS = 200;

const SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server";

/** A running private RabbitMQ. */
export class RabbitMq implements AsyncDisposable {
  readonly port: number;
  readonly dir: string;
  readonly #server: Deno.ChildProcess;
  readonly #epmd: Deno.ChildProcess;
  #stopped = false;

  private constructor(
    port: number,
    dir: string,
    server: Deno.ChildProcess,
    epmd: Deno.ChildProcess,
  ) {
    this.port = port;
    this.dir = dir;
    this.#server = server;
    this.#epmd = epmd;
  }

  /** `amqp://guest:guest@127.0.0.1:<port>/`. */
  get url(): string {
    return `amqp://guest:guest@127.0.0.1:${this.port}/`;
  }

  /** Why RabbitMQ cannot run here, or undefined when it can. */
  static async missing(): Promise<string | undefined> {
    try {
      await Deno.stat(SERVER);
      await Deno.stat("/usr/bin/epmd");
      return undefined;
    } catch {
      return "rabbitmq-server is not installed (Debian package rabbitmq-server)";
    }
  }

  /** Starts it and waits (bounded) until it answers the AMQP protocol header. */
  static async start(options: { timeoutMs?: number } = {}): Promise<RabbitMq> {
    const dir = await Deno.makeTempDir({ prefix: "peerd-amqp-rabbit-" });
    const port = freePort();
    const distPort = freePort();
    const epmdPort = freePort();
    for (const d of ["mnesia", "log", "home"]) await Deno.mkdir(`${dir}/${d}`);
    await Deno.writeTextFile(
      `${dir}/rabbitmq.conf`,
      [
        `listeners.tcp.1 = 127.0.0.1:${port}`,
        "loopback_users.guest = true",
        "log.console = false",
        "log.file.level = warning",
        "",
      ].join("\n"),
    );
    await Deno.writeTextFile(`${dir}/enabled_plugins`, "[].\n");
    const cookie = [...crypto.getRandomValues(new Uint8Array(20))].map((b) =>
      b.toString(16).padStart(2, "0")
    ).join("");
    await Deno.writeTextFile(`${dir}/home/.erlang.cookie`, cookie, { mode: 0o400 });
    // our own epmd, loopback only, in the foreground so that we own its PID
    const epmd = new Deno.Command("/usr/bin/epmd", {
      args: ["-address", "127.0.0.1", "-port", String(epmdPort)],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    const env: Record<string, string> = {
      HOME: `${dir}/home`,
      RABBITMQ_CONF_ENV_FILE: "/dev/null",
      RABBITMQ_NODENAME: `peerdtest${port}@localhost`,
      RABBITMQ_NODE_IP_ADDRESS: "127.0.0.1",
      RABBITMQ_NODE_PORT: String(port),
      RABBITMQ_DIST_PORT: String(distPort),
      ERL_EPMD_ADDRESS: "127.0.0.1",
      ERL_EPMD_PORT: String(epmdPort),
      RABBITMQ_CONFIG_FILE: `${dir}/rabbitmq.conf`,
      RABBITMQ_ENABLED_PLUGINS_FILE: `${dir}/enabled_plugins`,
      RABBITMQ_MNESIA_BASE: `${dir}/mnesia`,
      RABBITMQ_LOG_BASE: `${dir}/log`,
      RABBITMQ_PID_FILE: `${dir}/rabbit.pid`,
      RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS:
        "-kernel inet_dist_use_interface {127,0,0,1} -start_epmd false",
    };
    const server = new Deno.Command(SERVER, {
      cwd: dir,
      env,
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    const r = new RabbitMq(port, dir, server, epmd);
    const deadline = performance.now() + (options.timeoutMs ?? 60_000);
    let exited = false;
    server.status.then(() => exited = true);
    // poll its AMQP port (RabbitMQ has no readiness event to wait for), bounded by the deadline
    while (performance.now() < deadline && !exited) {
      if (await answersAmqp(port)) return r;
      await sleep(RABBITMQ_POLL_MS);
    }
    let log = "";
    try {
      for await (const e of Deno.readDir(`${dir}/log`)) {
        log += (await Deno.readTextFile(`${dir}/log/${e.name}`)).slice(-1500);
      }
    } catch {
      // no log
    }
    await r.stop();
    throw new Error(
      `Cannot start RabbitMQ on 127.0.0.1:${port}${exited ? ": it exited" : ""}\n${log}`,
    );
  }

  /** TERM to the launcher (RabbitMQ stops gracefully), KILL if it lingers; then epmd. Safe twice. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    let beam = 0;
    try {
      beam = Number((await Deno.readTextFile(`${this.dir}/rabbit.pid`)).trim());
    } catch {
      // not written
    }
    await stopProcess(this.#server, 15_000);
    // the launcher execs erl → beam.smp, so its PID is the broker's; check the one it wrote too
    if (beam > 0 && beam !== this.#server.pid) {
      try {
        Deno.kill(beam, "SIGKILL");
      } catch {
        // gone
      }
    }
    await stopProcess(this.#epmd, 5_000);
    await Deno.remove(this.dir, { recursive: true }).catch(() => {});
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}

/** Whether something on `port` answers the AMQP 0-9-1 header with connection.start. */
async function answersAmqp(port: number): Promise<boolean> {
  let conn: Deno.Conn | undefined;
  try {
    conn = await Deno.connect({ hostname: "127.0.0.1", port });
    await conn.write(new Uint8Array([0x41, 0x4d, 0x51, 0x50, 0, 0, 9, 1]));
    const buf = new Uint8Array(16);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const n = await Promise.race([
      conn.read(buf),
      new Promise<null>((r) => timer = setTimeout(() => r(null), 2_000)),
    ]);
    clearTimeout(timer);
    // a method frame on channel 0: connection.start (class 10, method 10)
    return n !== null && n >= 11 && buf[0] === 1 && buf[7] === 0 && buf[8] === 10 &&
      buf[10] === 10;
  } catch {
    return false;
  } finally {
    try {
      conn?.close();
    } catch {
      // closed
    }
  }
}
