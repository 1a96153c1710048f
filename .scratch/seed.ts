import { chaos } from "../tests/ring_sim.ts";
const seed = Number(Deno.args[0]);
const trace: string[] = [];
const { sim } = chaos(seed, trace);
console.log(sim.check());
Deno.writeTextFileSync("/tmp/ringwork/trace.txt", trace.join("\n"));
