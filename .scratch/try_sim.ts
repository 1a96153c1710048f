import { RingSim } from "../tests/ring_sim.ts";
const seeds = Number(Deno.args[0] ?? 20);
let bad = 0;
for (let seed = 1; seed <= seeds; seed++) {
  const names = ["n1","n2","n3","n4","n5"].slice(0, 3 + (seed % 3));
  const sim = new RingSim({ members: names, seed });
  const r = sim.random;
  sim.load(8, 15_000);
  let t = 500;
  while (t < 15_000) {
    sim.run(t);
    const k = r();
    const pick = () => names[Math.floor(r() * names.length)];
    if (k < 0.25) { const a = names.filter(() => r() < 0.5); sim.cut(a, names.filter((n) => !a.includes(n))); }
    else if (k < 0.35) sim.cut([pick()], [pick()], true);
    else if (k < 0.5) sim.heal();
    else if (k < 0.65) sim.pause(pick(), r() * 3 * sim.leaseMs);
    else if (k < 0.75) sim.crash(pick(), r() * 1000);
    t += 100 + r() * 1500;
  }
  sim.heal();
  sim.run(20_000);
  for (const n of names) sim.lock(n, 5);
  sim.run(26_000);
  for (let i = 0; i < 100 && sim.tokens().inFlight > 0; i++) sim.run(26_000 + i * 10);
  const problems = sim.check();
  const tk = sim.tokens();
  const granted = sim.grants.filter((g) => g.at >= 20_000).length;
  if (problems.length || tk.holders.length + tk.inFlight > 1 || granted < names.length) {
    bad++;
    console.log(seed, names.length, problems.slice(0, 3), tk, "after-heal grants", granted);
  }
  if (seed <= 1) console.log(seed, "grants", sim.grants.length, Object.fromEntries(sim.eventCounts));
}
console.log("bad", bad, "of", seeds);
