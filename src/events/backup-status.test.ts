import { describe, expect, test } from "bun:test";
import { BACKUP_STATES } from "./messages.ts";
import { backupPredecessors, classifyBackupMove, fullS3Url } from "./backup-status.ts";

describe("backup status machine", () => {
  // Rows: from; columns: to, in the order pending running completed failed.
  const TABLE = { pending: "= A A A", running: "S = A A", completed: "S S = S", failed: "S S S =" } as const;
  const CODE = { A: "advance", "=": "same", S: "stale" } as const;
  const cases = BACKUP_STATES.flatMap((from) =>
    TABLE[from].split(" ").map((c, i) => [from, BACKUP_STATES[i]!, CODE[c as keyof typeof CODE]] as const),
  );
  test.each(cases)("%s -> %s is %s", (from, to, expected) => expect(classifyBackupMove(from, to)).toBe(expected));
  test("predecessors match the table", () => {
    expect(backupPredecessors("completed")).toEqual(["pending", "running"]);
    expect(backupPredecessors("pending")).toEqual([]);
  });
});

describe("the s3_url of a backup", () => {
  test("a real host's bucket-less url gets the bucket", () => {
    expect(fullS3Url("s3://backups/3/2/9.tar.gz", "manman-prod")).toBe("s3://manman-prod/backups/3/2/9.tar.gz");
  });
  test("a url that names the bucket is kept, even when the bucket is called backups", () => {
    expect(fullS3Url("s3://manman-prod/backups/3/2/9.tar.gz", "manman-prod")).toBe("s3://manman-prod/backups/3/2/9.tar.gz");
    expect(fullS3Url("s3://backups/backups/3/2/9.tar.gz", "backups")).toBe("s3://backups/backups/3/2/9.tar.gz");
    expect(fullS3Url("s3://backups/3/2/9.tar.gz", "backups")).toBe("s3://backups/backups/3/2/9.tar.gz");
  });
  test("without a bucket, or for other forms, the url is stored as sent", () => {
    expect(fullS3Url("s3://backups/3/2/9.tar.gz", undefined)).toBe("s3://backups/3/2/9.tar.gz");
    expect(fullS3Url("s3://other/thing.tar.gz", "b")).toBe("s3://other/thing.tar.gz");
    expect(fullS3Url("https://x/y", "b")).toBe("https://x/y");
    expect(fullS3Url(undefined, "b")).toBeUndefined();
  });
});
