/**
 * `deno task bench wire_abuse`: how long another client waits while a node is attacked.
 * Replays the hostile-input regression tests of issue 20 (`tests/wire_abuse_test.ts`: the
 * nesting bomb, 16 MiB frames of empty maps and 100,000-deep frames with an extension
 * value, a connection flood) against real `peerd --role echo` processes, `--reps` times,
 * while a bystander client does `ctl status` round trips; prints the median and the worst of
 * each attack's slowest round trip (the tests themselves only assert a generous bound).
 *
 * @module
 */
const reps = Number(Deno.args[Deno.args.indexOf("--reps") + 1] || 5);
const root = new URL("..", import.meta.url).pathname;
const samples = new Map<string, number[]>();
for (let r = 0; r < reps; r++) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "test",
      "-A",
      "--no-check=remote",
      "tests/wire_abuse_test.ts",
      "--filter",
      "/nesting bomb|16 MiB|connection flood/",
    ],
    cwd: root,
    env: { PEERD_BENCH_REPORT: "1", NO_COLOR: "1" },
    stdout: "piped",
    stderr: "inherit",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  if (out.code !== 0) {
    console.error(text.slice(-4000));
    Deno.exit(1);
  }
  for (const line of text.split("\n")) {
    if (!line.startsWith('{"bench":"wire_abuse"')) continue;
    const rec = JSON.parse(line) as { figure: string; value: number };
    samples.set(rec.figure, [...(samples.get(rec.figure) ?? []), rec.value]);
  }
}
for (const [figure, values] of samples) {
  const sorted = [...values].sort((a, b) => a - b);
  console.log(JSON.stringify({
    bench: "wire_abuse",
    figure,
    value: sorted[Math.floor(sorted.length / 2)],
    worst: sorted.at(-1),
    unit: "ms",
    runs: values,
    target: "< 100 ms",
    load: Deno.loadavg()[0],
  }));
}
