/**
 * The leader/follower mutual-exclusion job over the embedded queue: `--role leader`
 * (embeds the queue, grants turns, checks the lists; `--spawn N` starts the followers
 * too) and `--role follower`.
 *
 * ```sh
 * peerd --role leader --spawn 8
 * ```
 *
 * @module
 */
export { leaderRole } from "./leader.ts";
export { followerRole, formatList } from "./follower.ts";
export {
  DIRECT_EXCHANGE,
  FANOUT_EXCHANGE,
  type JobChannel,
  type JobMessage,
  LEADER_JOB_FRAMES,
  LEADER_JOB_ROUTES,
  LEADER_QUEUE,
  MAX_VALUE,
} from "./protocol.ts";
export { leaderDemo } from "./demo.ts";
