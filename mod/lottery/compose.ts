/**
 * `peerd compose --agencies N --out docker-compose.yaml`: a compose file with the lottery
 * server and N agencies on one network, config and data mounted as volumes (no rebuild to
 * change them), built from the repo's Dockerfile (the compiled binary).
 *
 * @module
 */
import type { Command } from "commander";
import type { CommandDefinition } from "../process/mod.ts";

/** Renders the compose file text. */
export function composeYaml(
  agencies: number,
  options: { winningNumber?: number; port?: number } = {},
): string {
  const port = options.port ?? 7601;
  const lines = [
    "name: peerd-lottery",
    "services:",
    "  server:",
    "    build: .",
    "    image: peerd:latest",
    "    container_name: server",
    `    command: ["--role", "lottery-server", "--name", "server", "--listen", "0.0.0.0:${port}", "--agencies", "${
      Math.max(agencies, 1)
    }", "--winning-number", "${
      options.winningNumber ?? 7574
    }", "--data", "/data/server", "--events", "/data/server/events.jsonl"]`,
    "    environment:",
    "      - PEERD_LOG_LEVEL=info",
    "    volumes:",
    "      - ./config:/config:ro",
    "      - ./data:/data",
    "    networks:",
    "      - lottery_net",
  ];
  for (let a = 1; a <= agencies; a++) {
    lines.push(
      `  agency${a}:`,
      "    image: peerd:latest",
      `    container_name: agency${a}`,
      `    command: ["--role", "agency", "--name", "agency${a}", "--agency", "${a}", "--bets", "/config/agency-${a}.csv", "--server", "server:${port}"]`,
      "    volumes:",
      "      - ./config:/config:ro",
      "    networks:",
      "      - lottery_net",
      "    depends_on:",
      "      - server",
    );
  }
  lines.push("networks:", "  lottery_net:", "    driver: bridge", "");
  return lines.join("\n");
}

/** The `compose` subcommand. */
export const composeCommand: CommandDefinition = {
  name: "compose",
  summary: "write a docker compose file: the lottery server and N agencies",
  register(program: Command): void {
    program
      .command("compose")
      .description(
        "write a docker compose file with the lottery server and N agencies (N = 0 allowed)",
      )
      .requiredOption("--agencies <n>", "number of agencies")
      .option("--out <file>", "output file", "docker-compose.yaml")
      .option("--winning-number <n>", "winning number", "7574")
      .action(async (o: { agencies: string; out: string; winningNumber: string }) => {
        const agencies = Number(o.agencies);
        const winning = Number(o.winningNumber);
        if (
          !Number.isInteger(agencies) || agencies < 0 || !Number.isInteger(winning) ||
          winning < 0 || winning > 9999
        ) {
          console.error(
            "peerd compose: --agencies must be an integer ≥ 0 and --winning-number 0..9999",
          );
          Deno.exitCode = 2;
          return;
        }
        await Deno.writeTextFile(o.out, composeYaml(agencies, { winningNumber: winning }));
        console.log(`${o.out}: server and ${agencies} agencies`);
      });
  },
};
