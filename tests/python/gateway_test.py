"""The gateway through Python stubs generated from proto/ (grpcio-tools), as a Python service
would call it: an RPC, rich error details read with grpcio-status, and an event stream.

Run by scripts/test.sh:  python tests/python/gateway_test.py GATEWAY_BINARY STUBS_DIR
"""

import os
import socket
import subprocess
import sys
import tempfile
import time
import unittest

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

GATEWAY, STUBS = sys.argv[1], sys.argv[2]
sys.path.insert(0, STUBS)
from cloudtrail.gateway.v1 import cloudtrail_pb2 as pb  # noqa: E402
from cloudtrail.gateway.v1 import cloudtrail_pb2_grpc as pb_grpc  # noqa: E402


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def details(error, kind):
    """The details of type `kind` (a google.rpc message class) in a failed call's status."""
    found = []
    for detail in rpc_status.from_call(error).details:
        if detail.Is(kind.DESCRIPTOR):
            message = kind()
            detail.Unpack(message)
            found.append(message)
    return found


class Gateway:
    """The gateway binary on free loopback ports, embedded CloudTrail, quotas raised."""

    def __init__(self):
        self.addr = f"127.0.0.1:{free_port()}"
        self.log = tempfile.TemporaryFile()
        self.dir = tempfile.TemporaryDirectory()
        quotas = []
        for flag in ["lookup-rate", "read-rate", "write-rate", "local-lookup-quota",
                     "local-read-quota", "local-write-quota"]:
            quotas += [f"--{flag}", "1000"]
        self.proc = subprocess.Popen(
            [GATEWAY, "--listen", self.addr, "--metrics-listen", f"127.0.0.1:{free_port()}"]
            + ["--store-path", os.path.join(self.dir.name, "store.db")]
            + quotas,
            stdout=self.log, stderr=subprocess.STDOUT,
            env={**os.environ, "RUST_LOG": "warn"},
        )
        self.channel = grpc.insecure_channel(self.addr)
        grpc.channel_ready_future(self.channel).result(timeout=30)
        self.stub = pb_grpc.CloudTrailServiceStub(self.channel)

    def close(self):
        self.channel.close()
        self.proc.terminate()
        self.proc.wait(timeout=30)


class GatewayTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.gateway = Gateway()
        cls.stub = cls.gateway.stub

    @classmethod
    def tearDownClass(cls):
        cls.gateway.close()

    def test_a_trail_is_created_and_described(self):
        created = self.stub.CreateTrail(
            pb.CreateTrailRequest(name="python-trail", s3_bucket_name="python-bucket"),
            timeout=10,
        )
        self.assertTrue(created.trail.trail_arn.endswith(":trail/python-trail"))
        trails = self.stub.DescribeTrails(pb.DescribeTrailsRequest(), timeout=10)
        self.assertIn("python-trail", [t.name for t in trails.trail_list])

    def test_bad_input_comes_with_field_violations(self):
        with self.assertRaises(grpc.RpcError) as caught:
            self.stub.CreateTrail(pb.CreateTrailRequest(name="my--trail"), timeout=10)
        self.assertEqual(caught.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        violations = [v.field for bad in details(caught.exception, error_details_pb2.BadRequest)
                      for v in bad.field_violations]
        self.assertIn("name", violations)
        self.assertIn("s3_bucket_name", violations)

    def test_a_cloudtrail_error_names_its_aws_code(self):
        with self.assertRaises(grpc.RpcError) as caught:
            self.stub.GetTrailStatus(pb.GetTrailStatusRequest(name="no-such-trail"), timeout=10)
        self.assertEqual(caught.exception.code(), grpc.StatusCode.NOT_FOUND)
        infos = details(caught.exception, error_details_pb2.ErrorInfo)
        self.assertEqual([i.reason for i in infos], ["TrailNotFoundException"])
        self.assertTrue(infos[0].metadata["aws_request_id"])

    def test_events_stream_to_the_end(self):
        self.stub.CreateTrail(
            pb.CreateTrailRequest(name="streamed-trail", s3_bucket_name="python-bucket"),
            timeout=10,
        )
        time.sleep(1.1)  # the stream's history ends at its start second
        by_name = pb.LookupAttribute(
            attribute_key=pb.LOOKUP_ATTRIBUTE_KEY_EVENT_NAME, attribute_value="CreateTrail")
        messages = list(self.stub.StreamEvents(
            pb.StreamEventsRequest(lookup_attributes=[by_name]), timeout=30))
        self.assertTrue(messages[-1].caught_up)
        self.assertTrue(all(m.cursor for m in messages))
        names = [r.resource_name for m in messages for e in m.events for r in e.resources]
        self.assertTrue(any(n.endswith("/streamed-trail") for n in names), names)
        # The last cursor resumes after everything: nothing more.
        resumed = list(self.stub.StreamEvents(
            pb.StreamEventsRequest(lookup_attributes=[by_name], cursor=messages[-1].cursor),
            timeout=30))
        self.assertEqual([e for m in resumed for e in m.events], [])


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0], "-v"])
