/**
 * A log line's wire forms, each built once per line and shared by every
 * stream that sends it (one line watched by 1,000 clients is encoded once,
 * not 1,000 times). Kept in WeakMaps: a form lives as long as its line.
 */
import { create, toBinary, toJsonString } from "@bufbuild/protobuf";
import { LogMessageSchema, type LogMessage } from "../gen/manman/v1/log_processor_pb.ts";
import type { LogLine } from "../logs/line.ts";
import { envelop } from "./framing.ts";

const utf8 = new TextEncoder();

export class LogEncodings {
  private readonly messages = new WeakMap<LogLine, LogMessage>();
  private readonly envelopes = new WeakMap<LogLine, Uint8Array>();
  private readonly jsonEnvelopes = new WeakMap<LogLine, Uint8Array>();

  /** The wire message of a line (for the Connect router). */
  message(l: LogLine): LogMessage {
    let m = this.messages.get(l);
    if (!m) {
      m = create(LogMessageSchema, {
        sessionId: BigInt(l.sessionId),
        timestamp: BigInt(l.timestamp),
        source: l.source,
        message: l.message,
        sequenceNumber: BigInt(l.seq),
      });
      this.messages.set(l, m);
    }
    return m;
  }

  /** The length-prefixed binary encoding (gRPC, gRPC-Web, Connect). */
  envelope(l: LogLine): Uint8Array {
    let e = this.envelopes.get(l);
    if (!e) this.envelopes.set(l, (e = envelop(toBinary(LogMessageSchema, this.message(l)))));
    return e;
  }

  /** The same with the proto3 JSON encoding (Connect with JSON). */
  jsonEnvelope(l: LogLine): Uint8Array {
    let e = this.jsonEnvelopes.get(l);
    if (!e) this.jsonEnvelopes.set(l, (e = envelop(utf8.encode(toJsonString(LogMessageSchema, this.message(l))))));
    return e;
  }
}
