"""The embedded CloudTrail's delivery read by tools nobody here wrote, over --local-http-listen:
boto3 lists and reads the log files a trail delivered to the embedded S3, and the AWS CLI's own
`aws cloudtrail validate-logs` (awscli on PyPI) checks every digest's signature and every log
file's hash, then finds a log file changed behind its back.

Run by scripts/test.sh:  python tests/python/peers_test.py GATEWAY_BINARY AWS_CLI
"""

import gzip
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import unittest
from datetime import datetime, timedelta, timezone

import boto3
import botocore.exceptions

GATEWAY, AWS = sys.argv[1], sys.argv[2]
BUCKET = "peer-logs"
TRAIL_ARN = "arn:aws:cloudtrail:us-east-1:123456789012:trail/peer"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PeersTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.endpoint = f"http://127.0.0.1:{free_port()}"
        cls.log = tempfile.TemporaryFile()
        cls.dir = tempfile.TemporaryDirectory()
        cls.proc = subprocess.Popen(
            [GATEWAY, "--listen", f"127.0.0.1:{free_port()}",
             "--metrics-listen", f"127.0.0.1:{free_port()}",
             "--local-http-listen", cls.endpoint.removeprefix("http://"),
             "--local-delivery-interval", "1s", "--local-digest-interval", "2s",
             # AWS's quotas raised: two writes in a second are 1/s's ThrottlingException.
             "--local-write-quota", "1000", "--local-read-quota", "1000",
             "--store-path", os.path.join(cls.dir.name, "store.db")],
            stdout=cls.log, stderr=subprocess.STDOUT, env={**os.environ, "RUST_LOG": "warn"},
        )
        # Any credentials: the embedded CloudTrail files unknown keys under its default user.
        cls.env = {**os.environ, "AWS_ACCESS_KEY_ID": "AKIAPEERTEST", "AWS_SECRET_ACCESS_KEY": "x",
                   "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": cls.endpoint,
                   "AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
                   "AWS_EC2_METADATA_DISABLED": "true"}
        session = boto3.Session(aws_access_key_id="AKIAPEERTEST", aws_secret_access_key="x",
                                region_name="us-east-1")
        cls.s3 = session.client("s3", endpoint_url=cls.endpoint)
        cls.cloudtrail = session.client("cloudtrail", endpoint_url=cls.endpoint)
        for _ in range(300):
            try:
                cls.cloudtrail.describe_trails()
                break
            except botocore.exceptions.EndpointConnectionError:
                time.sleep(0.1)
        cls.start = (datetime.now(timezone.utc) - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        cls.cloudtrail.create_trail(Name="peer", S3BucketName=BUCKET, EnableLogFileValidation=True)
        cls.cloudtrail.start_logging(Name="peer")
        for _ in range(3):
            cls.cloudtrail.get_trail_status(Name="peer")
        # Every call delivered, and a digest after the last file (deliveries every second, digests
        # every two).
        for _ in range(100):
            if cls.delivered().count("GetTrailStatus") == 3:
                break
            time.sleep(0.1)
        time.sleep(2.5)

    @classmethod
    def tearDownClass(cls):
        cls.proc.terminate()
        cls.proc.wait(timeout=30)

    @classmethod
    def keys(cls, prefix):
        pages = cls.s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
        return [o["Key"] for page in pages for o in page.get("Contents", [])]

    @classmethod
    def delivered(cls):
        """The names of the events in the delivered log files."""
        return [r["eventName"]
                for key in cls.keys("AWSLogs/123456789012/CloudTrail/us-east-1/")
                for r in json.loads(gzip.decompress(cls.get(key)))["Records"]]

    @classmethod
    def get(cls, key):
        return cls.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()

    def validate(self):
        done = subprocess.run(
            [AWS, "cloudtrail", "validate-logs", "--trail-arn", TRAIL_ARN,
             "--start-time", self.start, "--verbose"],
            env=self.env, capture_output=True, text=True, timeout=120)
        return done.returncode, done.stdout + done.stderr

    def test_1_boto3_reads_the_delivered_calls(self):
        for key in self.keys("AWSLogs/123456789012/CloudTrail/us-east-1/"):
            self.assertRegex(key, r"/\d{4}/\d{2}/\d{2}/123456789012_CloudTrail_us-east-1_"
                                  r"\d{8}T\d{4}Z_[A-Za-z0-9]{16}\.json\.gz$")
        names = self.delivered()
        self.assertEqual(names.count("StartLogging"), 1)
        self.assertEqual(names.count("GetTrailStatus"), 3)
        self.assertNotIn("CreateTrail", names)
        digest = self.keys("AWSLogs/123456789012/CloudTrail-Digest/")[0]
        head = self.s3.head_object(Bucket=BUCKET, Key=digest)
        self.assertEqual(head["Metadata"]["signature-algorithm"], "SHA256withRSA")
        self.assertRegex(head["Metadata"]["signature"], r"^[0-9a-f]{512}$")
        part = self.s3.get_object(Bucket=BUCKET, Key=digest, Range="bytes=0-1")
        self.assertEqual(part["Body"].read(), b"\x1f\x8b")
        with self.assertRaises(botocore.exceptions.ClientError) as missing:
            self.s3.get_object(Bucket=BUCKET, Key="nope")
        self.assertEqual(missing.exception.response["Error"]["Code"], "NoSuchKey")
        with self.assertRaises(botocore.exceptions.ClientError) as unknown:
            self.s3.list_objects_v2(Bucket="no-such-bucket")
        self.assertEqual(unknown.exception.response["Error"]["Code"], "NoSuchBucket")

    def test_2_the_aws_cli_validates_every_digest_and_log_file(self):
        code, out = self.validate()
        self.assertEqual(code, 0, out)
        self.assertRegex(out, r"(\d+)/\1 digest files valid")
        self.assertRegex(out, r"(\d+)/\1 log files valid")
        self.assertNotIn("INVALID", out)

    def test_3_the_aws_cli_finds_a_changed_log_file(self):
        key = self.keys("AWSLogs/123456789012/CloudTrail/us-east-1/")[0]
        records = json.loads(gzip.decompress(self.get(key)))
        records["Records"][0]["sourceIPAddress"] = "203.0.113.9"
        self.s3.put_object(Bucket=BUCKET, Key=key, Body=gzip.compress(json.dumps(records).encode()))
        code, out = self.validate()
        self.assertEqual(code, 1, out)
        self.assertIn(f"Log file\ts3://{BUCKET}/{key}\tINVALID: hash value doesn't match", out)
        self.assertNotRegex(out, r"Digest file\t\S+\tINVALID")


if __name__ == "__main__":
    unittest.main(argv=sys.argv[:1], verbosity=2)
