import assert from "node:assert/strict";
import { checkPattern, checkTopic, TopicError, topicMatches } from "../mod/mom/mod.ts";

Deno.test("checkTopic() accepts plain topics and refuses wildcards, empty and over-long ones", () => {
  assert.equal(checkTopic("Museum/Doors/Door0"), "Museum/Doors/Door0");
  assert.equal(checkTopic("a//b"), "a//b");
  assert.equal(checkTopic("x".repeat(255)), "x".repeat(255));
  for (const bad of ["", "a/+/b", "a/#", "x".repeat(256), "é".repeat(128), 7, null]) {
    assert.throws(() => checkTopic(bad), TopicError, String(bad).slice(0, 20));
  }
});

Deno.test("checkPattern() allows + as a whole level and # only as the whole last level", () => {
  for (const ok of ["a", "+", "#", "a/+/c", "a/#", "+/+/#", "Museum/Doors/+"]) {
    assert.equal(checkPattern(ok), ok);
  }
  for (const bad of ["", "a/#/b", "a#", "a/b+", "+a/b", "##", "x".repeat(256)]) {
    assert.throws(() => checkPattern(bad), TopicError, bad.slice(0, 20));
  }
});

Deno.test("topicMatches() follows MQTT matching for + and #", () => {
  const cases: Array<[string, string, boolean]> = [
    ["Museum/Doors/Door0", "Museum/Doors/Door0", true],
    ["Museum/Doors/Door0", "Museum/Doors/Door1", false],
    ["Museum/+/Door0", "Museum/Doors/Door0", true],
    ["Museum/+/Door0", "Museum/Doors/X/Door0", false],
    ["Museum/+", "Museum", false],
    ["Museum/#", "Museum", true],
    ["Museum/#", "Museum/Doors/Door0", true],
    ["#", "anything/at/all", true],
    ["+/+", "a/b", true],
    ["+/+", "a/b/c", false],
    ["a/+/c/#", "a/b/c", true],
    ["a/+/c/#", "a/b/d/e", false],
  ];
  for (const [pattern, topic, want] of cases) {
    assert.equal(topicMatches(pattern, topic), want, `${pattern} vs ${topic}`);
  }
});
