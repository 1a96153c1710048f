/**
 * `deno task bench [names…]`: runs every `bench/*_bench.ts` (or the named ones) one after
 * another as separate processes; each prints one JSON line per figure.
 *
 * @module
 */
const dir = new URL(".", import.meta.url).pathname;
const wanted = Deno.args;
const files = [...Deno.readDirSync(dir)]
  .map((e) => e.name)
  .filter((n) => n.endsWith("_bench.ts"))
  .filter((n) => wanted.length === 0 || wanted.some((w) => n.startsWith(w)))
  .sort();
if (files.length === 0) {
  console.error(`bench: nothing matches ${wanted.join(", ")}`);
  Deno.exit(2);
}
let failed = 0;
for (const file of files) {
  console.error(`bench: ${file}`);
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", `${dir}${file}`],
    stdout: "inherit",
    stderr: "inherit",
  }).spawn();
  const { code } = await child.status;
  if (code !== 0) {
    failed++;
    console.error(`bench: ${file} exited ${code}`);
  }
}
Deno.exit(failed === 0 ? 0 : 1);
