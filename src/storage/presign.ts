/**
 * Pre-signed S3 URLs for backup uploads: a host manager PUTs its tarball to
 * the URL without credentials of its own (UPSTREAM.md §1, §4). SigV4 query
 * signing by aws4fetch (`signQuery`), web crypto only, so the Deno bundle
 * runs it too (PITFALLS "S3 from Bun and Deno").
 *
 * Signed against S3_PUBLIC_ENDPOINT when it is set — the address a host
 * outside the cluster reaches — else S3_ENDPOINT, else AWS; path-style for
 * an endpoint, as upstream and storage/s3.ts address it. The signature
 * covers the host of that URL, so the URL works only there.
 *
 * As upstream's PresignPutURL (libs/go/s3/s3.go, AWS SDK v2 with
 * ContentType set), `content-type` is a signed header: the host must send
 * exactly `Content-Type: application/gzip`, which it does. The payload is
 * unsigned (`UNSIGNED-PAYLOAD`): the host streams a file whose hash we
 * cannot know.
 */
import { AwsV4Signer } from "aws4fetch";

export interface PresignerOptions {
  bucket: string;
  /** Signing region; us-east-1 when unset, as upstream. */
  region?: string;
  /** S3-compatible endpoint URL (path-style); unset = AWS. */
  endpoint?: string;
  /** The endpoint as hosts reach it; wins over `endpoint` for the URLs handed out. */
  publicEndpoint?: string;
  accessKeyId: string;
  secretAccessKey: string;
}

export interface PresignRequest {
  method: string;
  url: string;
  /** Headers the requester must send as given (signed). */
  headers?: Record<string, string>;
  expiresSeconds: number;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** Signing time; now when unset (tests pass AWS's example time). */
  at?: Date;
}

/** A SigV4 query-signed URL for one request. */
export async function presignUrl(r: PresignRequest): Promise<string> {
  const url = new URL(r.url);
  // aws4fetch keeps an X-Amz-Expires already on the URL (its default is 24 h).
  url.searchParams.set("X-Amz-Expires", String(r.expiresSeconds));
  const datetime = r.at ? r.at.toISOString().replace(/[:-]|\.\d{3}/g, "") : undefined;
  const signer = new AwsV4Signer({
    method: r.method,
    url: url.toString(),
    headers: r.headers,
    accessKeyId: r.accessKeyId,
    secretAccessKey: r.secretAccessKey,
    service: "s3",
    region: r.region,
    signQuery: true,
    // content-type is among aws4fetch's "unsignable" headers; S3 signs it
    // when the presigner names it, as upstream's does.
    allHeaders: true,
    datetime,
  });
  return (await signer.sign()).url.toString();
}

export class Presigner {
  readonly bucket: string;
  /** Where the URLs point: the public endpoint, the endpoint, or AWS. */
  readonly base: string;
  readonly #options: PresignerOptions;
  readonly #region: string;

  constructor(options: PresignerOptions) {
    this.#options = options;
    this.bucket = options.bucket;
    this.#region = options.region || "us-east-1";
    const endpoint = options.publicEndpoint || options.endpoint;
    this.base = endpoint
      ? `${endpoint.replace(/\/+$/, "")}/${encodeURIComponent(options.bucket)}`
      : `https://${options.bucket}.s3.${this.#region}.amazonaws.com`;
  }

  /** A URL a host can PUT `key` to with `contentType` until `expiresSeconds` after `at`. */
  presignPut(key: string, contentType: string, expiresSeconds: number, at?: Date): Promise<string> {
    return presignUrl({
      method: "PUT",
      url: `${this.base}/${key.split("/").map(encodeURIComponent).join("/")}`,
      headers: { "Content-Type": contentType },
      expiresSeconds,
      region: this.#region,
      accessKeyId: this.#options.accessKeyId,
      secretAccessKey: this.#options.secretAccessKey,
      at,
    });
  }
}
