/**
 * The standard process metrics (`process_*`, as Prometheus client libraries name them):
 * resident memory, heap, CPU seconds, open file descriptors, start time.
 *
 * @module
 */
import type { MetricRegistry } from "./metrics.ts";

/** Declares the process metrics on `registry`; returns the function that refreshes them. */
export function processMetrics(registry: MetricRegistry): () => void {
  const started = (performance.timeOrigin) / 1000;
  const start = registry.gauge("process_start_time_seconds", "start time since the epoch");
  const rss = registry.gauge("process_resident_memory_bytes", "resident memory");
  const heap = registry.gauge("process_heap_bytes", "V8 heap used");
  const external = registry.gauge("process_external_memory_bytes", "memory held outside V8");
  const cpu = registry.counter("process_cpu_seconds_total", "user and system CPU time");
  const fds = registry.gauge("process_open_fds", "open file descriptors");
  return () => {
    start.set({}, Math.round(started * 1000) / 1000);
    const mem = Deno.memoryUsage();
    rss.set({}, mem.rss);
    heap.set({}, mem.heapUsed);
    external.set({}, mem.external);
    if (Deno.build.os !== "linux") return;
    try {
      const stat = Deno.readTextFileSync("/proc/self/stat");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      // utime and stime are fields 14 and 15 of stat(5); 100 ticks a second on Linux
      cpu.set({}, (Number(fields[11]) + Number(fields[12])) / 100);
      let n = 0;
      for (const _ of Deno.readDirSync("/proc/self/fd")) n++;
      fds.set({}, n);
    } catch {
      // /proc not readable: leave them out
    }
  };
}
