/**
 * The `echo` role: the echo server the lottery course starts with. Answers every
 * `{t:"echo", data}` with `{t:"echo.ok", data}` (same data, same `rid`).
 *
 * @module
 */
import { aborted, type RoleContext, type RoleDefinition, startNodeServer } from "../process/mod.ts";
import type { Message } from "../wire/mod.ts";

/** The echo role. */
export const echoRole: RoleDefinition = {
  name: "echo",
  summary: 'echo server: answers every {t:"echo", data} with the same data',
  peers: "optional",
  defaultPort: 7000,
  examples: ["peerd --role echo --listen 127.0.0.1:7000", "peerd ctl 127.0.0.1:7000 status"],
  async run(ctx: RoleContext): Promise<number> {
    let echoed = 0;
    const server = startNodeServer(ctx, {
      handlers: {
        echo: (msg: Message): Message => {
          echoed++;
          return { t: "echo.ok", data: msg.data };
        },
      },
      ctl: { status: () => ({ echoed }) },
    });
    try {
      ctx.events.emit("ready", { listen: `${ctx.listen.hostname}:${server.port}` });
      ctx.log.info(`listening on ${ctx.listen.hostname}:${server.port}`);
      await aborted(ctx.signal);
    } finally {
      await server.close();
      ctx.events.emit("stopped", { echoed });
    }
    return 0;
  },
};
