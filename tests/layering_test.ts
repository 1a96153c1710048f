/**
 * The layering rules of `mod/`, checked on the source: a folder (subsystem or shared
 * service) is entered only through its `mod.ts`, and no two folders import each other,
 * directly or through others (no import circles between folders), and only the demo uses
 * the harness of local clusters (`mod/harness`).
 */
import assert from "node:assert/strict";

const MOD = new URL("../mod/", import.meta.url);
const IMPORT = /(?:import|export)\s[^;]*?from\s+["'](\.[^"']+)["']/gs;

/** Every `.ts`/`.js` file under `mod/`, as a path relative to it. */
function sourceFiles(dir = MOD, prefix = ""): string[] {
  const out: string[] = [];
  for (const entry of Deno.readDirSync(dir)) {
    const rel = prefix + entry.name;
    if (entry.isDirectory) out.push(...sourceFiles(new URL(`${entry.name}/`, dir), `${rel}/`));
    else if (/\.(ts|js)$/.test(entry.name)) out.push(rel);
  }
  return out;
}

/** `a/b/../c.ts` → `a/c.ts` (paths relative to `mod/`; `..` past it gives `../x`). */
function normalise(path: string): string {
  const parts: string[] = [];
  for (const part of path.split("/")) {
    if (part === "." || part === "") continue;
    if (part === ".." && parts.length > 0 && parts[parts.length - 1] !== "..") parts.pop();
    else parts.push(part);
  }
  return parts.join("/");
}

/** Relative imports of every file under `mod/`: [importer, imported], both relative to `mod/`. */
function importEdges(): Array<[string, string]> {
  const edges: Array<[string, string]> = [];
  for (const file of sourceFiles()) {
    const text = Deno.readTextFileSync(new URL(file, MOD));
    const dir = file.includes("/") ? file.slice(0, file.lastIndexOf("/")) : "";
    for (const m of text.matchAll(IMPORT)) edges.push([file, normalise(`${dir}/${m[1]}`)]);
  }
  return edges;
}

const folderOf = (path: string) => path.split("/")[0];

Deno.test("mod/: a folder is imported from another only through its mod.ts", () => {
  const deep = importEdges().filter(([from, to]) =>
    !to.startsWith("..") && folderOf(from) !== folderOf(to) && to !== `${folderOf(to)}/mod.ts`
  );
  assert.deepEqual(deep.map(([from, to]) => `${from} → ${to}`), []);
});

Deno.test("mod/: no import circles between folders", () => {
  const graph = new Map<string, Set<string>>();
  for (const [from, to] of importEdges()) {
    if (to.startsWith("..")) continue;
    const a = folderOf(from);
    const b = folderOf(to);
    if (a === b || !from.includes("/")) continue;
    if (!graph.has(a)) graph.set(a, new Set());
    graph.get(a)!.add(b);
  }
  // a depth-first search that reports the first circle it finds, as a path
  const state = new Map<string, "open" | "done">();
  const stack: string[] = [];
  const circles: string[] = [];
  const visit = (node: string) => {
    state.set(node, "open");
    stack.push(node);
    for (const next of graph.get(node) ?? []) {
      if (state.get(next) === "open") {
        circles.push([...stack.slice(stack.indexOf(next)), next].join(" → "));
      } else if (!state.has(next)) visit(next);
    }
    stack.pop();
    state.set(node, "done");
  };
  for (const node of [...graph.keys()].sort()) if (!state.has(node)) visit(node);
  assert.deepEqual(circles, []);
  assert.ok(graph.size > 10, "the check saw the folders");
});

Deno.test("mod/: only the demo imports the harness (role code never imports test helpers)", () => {
  const allowed = (from: string) =>
    folderOf(from) === "harness" || folderOf(from) === "demo" || from.endsWith("/demo.ts");
  const bad = importEdges().filter(([from, to]) => folderOf(to) === "harness" && !allowed(from));
  assert.deepEqual(bad.map(([from, to]) => `${from} → ${to}`), []);
  assert.ok(
    importEdges().some(([from, to]) => from === "demo/role.ts" && folderOf(to) === "harness"),
    "the check saw the demo's harness import",
  );
});
