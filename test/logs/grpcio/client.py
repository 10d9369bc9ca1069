"""A gRPC C-core client (Python grpcio), the strictest common peer of the
hand-written gRPC stream path: prints one JSON line per check."""
import json
import sys

import grpc

sys.path.insert(0, sys.argv[2])
from manman.v1 import log_processor_pb2 as pb, log_processor_pb2_grpc as rpc  # noqa: E402

port, token = sys.argv[1], sys.argv[3]
stub = rpc.LogProcessorStub(grpc.insecure_channel(f"127.0.0.1:{port}"))
md = [("authorization", f"Bearer {token}")]
out = {}

try:
    list(stub.StreamSessionLogs(pb.StreamSessionLogsRequest(session_id=7)))
except grpc.RpcError as e:
    out["no_token"] = e.code().name

call = stub.StreamSessionLogs(pb.StreamSessionLogsRequest(session_id=7, after_sequence_number=2), metadata=md)
got = []
for m in call:
    got.append([m.sequence_number, m.message])
    if len(got) == 3:
        call.cancel()
        break
out["resumed"] = got

try:
    list(stub.StreamSessionLogs(pb.StreamSessionLogsRequest(session_id=99), metadata=md, timeout=1))
except grpc.RpcError as e:
    out["deadline"] = e.code().name

try:
    list(stub.StreamSessionLogs(pb.StreamSessionLogsRequest(session_id=0), metadata=md))
except grpc.RpcError as e:
    out["bad_request"] = e.code().name

print(json.dumps(out))
