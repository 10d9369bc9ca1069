import { describe, expect, test } from "bun:test";
import { Presigner, presignUrl } from "./presign.ts";

// AWS's published example of a pre-signed URL ("Authenticating Requests:
// Using Query Parameters (AWS Signature Version 4)", Amazon S3 API
// reference): GET examplebucket/test.txt, 2013-05-24T00:00:00Z, 86400 s.
const AWS_EXAMPLE = {
  accessKeyId: "AKIAIOSFODNN7EXAMPLE",
  secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
  signature: "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404",
};

describe("pre-signed URLs", () => {
  test("sign as AWS's published example does", async () => {
    const url = new URL(
      await presignUrl({
        method: "GET", url: "https://examplebucket.s3.amazonaws.com/test.txt", expiresSeconds: 86400, region: "us-east-1",
        accessKeyId: AWS_EXAMPLE.accessKeyId, secretAccessKey: AWS_EXAMPLE.secretAccessKey, at: new Date("2013-05-24T00:00:00Z"),
      }),
    );
    expect(url.searchParams.get("X-Amz-Credential")).toBe("AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request");
    expect(url.searchParams.get("X-Amz-SignedHeaders")).toBe("host");
    expect(url.searchParams.get("X-Amz-Signature")).toBe(AWS_EXAMPLE.signature);
  });

  test("a backup upload URL: the public endpoint, path-style, one hour, content-type signed", async () => {
    const p = new Presigner({
      bucket: "backups-prod", endpoint: "http://minio.internal:9000", publicEndpoint: "https://s3.example.com/",
      accessKeyId: "AK", secretAccessKey: "SK", region: "eu-west-1",
    });
    const url = new URL(await p.presignPut("backups/3/2/7.tar.gz", "application/gzip", 3600, new Date("2026-01-02T03:04:05Z")));
    expect(`${url.origin}${url.pathname}`).toBe("https://s3.example.com/backups-prod/backups/3/2/7.tar.gz");
    expect(url.searchParams.get("X-Amz-Expires")).toBe("3600");
    expect(url.searchParams.get("X-Amz-Date")).toBe("20260102T030405Z");
    expect(url.searchParams.get("X-Amz-Credential")).toBe("AK/20260102/eu-west-1/s3/aws4_request");
    expect(url.searchParams.get("X-Amz-SignedHeaders")).toBe("content-type;host");
    expect(url.searchParams.get("X-Amz-Signature")).toMatch(/^[0-9a-f]{64}$/);
  });

  test("without a public endpoint: S3_ENDPOINT; without either: AWS, virtual-hosted, us-east-1", () => {
    const creds = { accessKeyId: "AK", secretAccessKey: "SK" };
    expect(new Presigner({ bucket: "b", endpoint: "http://minio:9000", ...creds }).base).toBe("http://minio:9000/b");
    expect(new Presigner({ bucket: "b", ...creds }).base).toBe("https://b.s3.us-east-1.amazonaws.com");
  });
});
