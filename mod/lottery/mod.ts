/**
 * The lottery: `--role lottery-server`, `--role agency`, and the commands `lottery-gen`,
 * `compose`, `echo-check`.
 *
 * @module
 */
export {
  type Bet,
  betLineProblem,
  betProblem,
  DEFAULT_WINNING_NUMBER,
  formatBetsCsv,
  type InvalidLine,
  parseBetBatch,
  parseBetLine,
  parseBetsCsv,
} from "./bet.ts";
export { LotteryStore } from "./store.ts";
export { LotteryServer, lotteryServerRole, MAX_BATCH_BETS } from "./server.ts";
export { agencyRole, type CsvBatch, MAX_BATCH_FRAME_BYTES, splitCsvBatches } from "./agency.ts";
export { generateBets, lotteryGenCommand } from "./generate.ts";
export { composeCommand, composeYaml } from "./compose.ts";
export { echoCheckCommand } from "./echo_check.ts";
export { lotteryDemo } from "./demo.ts";
