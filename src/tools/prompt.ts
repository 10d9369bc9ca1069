/**
 * A yes/no question on the terminal, for commands that delete (dlq purge).
 * Only "yes" (any case) goes ahead; anything else, end of input or no answer
 * within the deadline is a no.
 */
import { createInterface } from "node:readline";
import type { Readable, Writable } from "node:stream";

// 5 minutes: the messages in question stay held (unacked) while the
// operator reads, and RabbitMQ closes a channel that holds a delivery past
// consumer_timeout (30 min by default).
export const ANSWER_WITHIN_MS = 5 * 60_000;

export function askYes(question: string, input: Readable, output: Writable, timeoutMs = ANSWER_WITHIN_MS): Promise<boolean> {
  return new Promise((resolve) => {
    const rl = createInterface({ input, output, terminal: false });
    let settled = false;
    const finish = (answer: boolean) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      rl.close();
      // The terminal keeps the process alive while stdin is read.
      input.pause();
      resolve(answer);
    };
    const timer = setTimeout(() => {
      output.write("\n(no answer; taken as no)\n");
      finish(false);
    }, timeoutMs);
    rl.on("close", () => finish(false));
    output.write(question);
    rl.once("line", (line) => finish(line.trim().toLowerCase() === "yes"));
  });
}
