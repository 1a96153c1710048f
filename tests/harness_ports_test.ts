import assert from "node:assert/strict";
import { freePort, freePorts } from "./harness/mod.ts";

Deno.test("freePorts: distinct ports, none repeated by later calls", () => {
  const seen = new Set<number>();
  for (let round = 0; round < 20; round++) {
    for (const port of [...freePorts(8), freePort()]) {
      assert.ok(port > 0 && port < 65536, `port ${port} out of range`);
      assert.ok(!seen.has(port), `port ${port} handed out twice`);
      seen.add(port);
    }
  }
  assert.equal(seen.size, 20 * 9);
});

Deno.test("freePorts: each port handed out is free to bind", () => {
  for (const port of freePorts(4)) {
    const listener = Deno.listen({ hostname: "127.0.0.1", port });
    listener.close();
  }
});
