/**
 * peers-bench adapter for peerd's MOM (`../shared/peers-bench/adapters/types.ts`):
 * every connection is an application of the daemon at the URL (`tcp://host:port` of a
 * `peerd --role daemon`), with its own user, going through the daemon and the broker as
 * applications do. Publications are durable and delivered exactly once: the daemon commits
 * each to its SQLite outbox, together with the inboxes of its own subscribed users (all the
 * harness's connections share one daemon); subscribers on other daemons would get it through
 * the broker's SQLite outbox and their daemon's inbox. `flush()` resolves when the daemon has
 * stored everything published before it.
 *
 * ```sh
 * PEERS_ADAPTER_peerd=$REPO/bench/peers_adapter.ts PEERS_PROJECT_CONFIG=$REPO/deno.json \
 * PEERS_URL_peerd=tcp://127.0.0.1:7411 PEERS_PID_peerd=<broker pid> BROKERS="... peerd" bash run-all.sh
 * ```
 *
 * @module
 */
import { MomClient } from "../mod/mom/client.ts";

/** One pub/sub connection (the peers-bench `PubSubConn` shape). */
interface PubSubConn {
  subscribe(topic: string, onMessage: (data: Uint8Array) => void): Promise<void>;
  publish(topic: string, data: Uint8Array): void;
  flush(): Promise<void>;
  close(): Promise<void>;
}

/** The peers-bench `PubSubAdapter` for peerd. */
export const adapter = {
  name: "peerd",
  defaultUrl: "tcp://127.0.0.1:7411",
  describe: "peerd MOM via its daemon (MomClient): durable SQLite outbox/inbox, exactly-once",
  async connect(url: string, label: string): Promise<PubSubConn> {
    const u = new URL(url);
    const client = await MomClient.connect(
      { hostname: u.hostname, port: Number(u.port) },
      { name: label },
    );
    const user = await client.create();
    let closed = false;
    let loop: Promise<void> | undefined;
    return {
      async subscribe(topic, onMessage) {
        await user.subscribe(topic);
        loop = (async () => {
          while (!closed) {
            let batch;
            try {
              batch = await user.receiveBatch({ timeout: 1_000, max: 2_000 });
            } catch {
              if (closed) return;
              throw new Error(`peerd adapter ${label}: receive failed`);
            }
            for (const m of batch) onMessage(m.payload);
          }
        })();
      },
      publish(topic, data) {
        user.publishNoWait(topic, data);
      },
      async flush() {
        await user.flush();
      },
      async close() {
        closed = true;
        await user.destroy().catch(() => {});
        await client.close();
        await loop?.catch(() => {});
      },
    };
  },
};
