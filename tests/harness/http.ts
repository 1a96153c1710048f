/**
 * Test helpers for nodes with `--http`: distinct free ports (held together while chosen,
 * so a node's native port and its HTTP port never collide), node specs with an `http`
 * address in their peers entry, and headless Chromium for the console tests.
 *
 * @module
 */
import { freePorts, type NodeSpec } from "../../mod/harness/mod.ts";

export { freePorts };

/** Node specs with fixed native ports and an `"http"` entry in the peers file. */
export function httpNodes(
  nodes: Array<{ name: string; role: string; args?: string[] }>,
): Array<NodeSpec & { http: string }> {
  const ports = freePorts(nodes.length * 2);
  return nodes.map((n, i) => ({
    ...n,
    port: ports[2 * i],
    http: `127.0.0.1:${ports[2 * i + 1]}`,
    entry: { http: `127.0.0.1:${ports[2 * i + 1]}` },
  }));
}

/** Where Debian's Chromium is. */
export const CHROMIUM = "/usr/bin/chromium";

/** The flags every headless Chromium of the tests runs with. */
export const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--disable-dev-shm-usage",
];

/** Whether an executable exists at `path`. */
export function hasExecutable(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

/** The folder (gitignored) where tests keep screenshots and SVGs for a person to look at. */
export const ARTEFACTS = new URL("../artefacts/", import.meta.url).pathname;
