#!/usr/bin/env python3
"""Test set-up and inspection against a moto server, with boto3 (installed
with moto in .venv/moto): buckets, S3 Tables buckets, uploads, queues, topics,
notifications.

Usage: moto_admin.py ENDPOINT COMMAND JSON-ARGS
Prints the command's result as JSON.
"""
import json
import os
import sys

import boto3

ENDPOINT, COMMAND, ARGS = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
KW = dict(endpoint_url=ENDPOINT, region_name="us-east-1",
          aws_access_key_id="test", aws_secret_access_key="test")
s3 = boto3.client("s3", **KW)
sqs = boto3.client("sqs", **KW)
sns = boto3.client("sns", **KW)


def queue_arn(url):
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def create_bucket(a):
    s3.create_bucket(Bucket=a["bucket"])
    return {}


def upload_tree(a):
    """Uploads every file under `dir` ending in `suffix` as PREFIX + its relative path."""
    n = 0
    for root, _, files in os.walk(a["dir"]):
        for f in sorted(files):
            path = os.path.join(root, f)
            rel = os.path.relpath(path, a["dir"]).replace(os.sep, "/")
            if not rel.endswith(a.get("suffix", "")):
                continue
            s3.upload_file(path, a["bucket"], a.get("prefix", "") + rel)
            n += 1
    return {"uploaded": n}


def create_table_bucket(a):
    """A new S3 Tables table bucket; returns its ARN."""
    s3tables = boto3.client("s3tables", **KW)
    return {"arn": s3tables.create_table_bucket(name=a["name"])["arn"]}


def put_object(a):
    s3.put_object(Bucket=a["bucket"], Key=a["key"], Body=a["body"].encode())
    return {}


def list(a):
    """Every key in the bucket, and the multipart uploads still open."""
    keys = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=a["bucket"]):
        keys += [o["Key"] for o in page.get("Contents", [])]
    uploads = s3.list_multipart_uploads(Bucket=a["bucket"]).get("Uploads", [])
    return {"keys": keys, "uploads": [u["Key"] for u in uploads]}


def start_upload(a):
    """Starts a multipart upload of `key` and sends one part, then leaves it
    unfinished, as a writer that crashed would."""
    upload = s3.create_multipart_upload(Bucket=a["bucket"], Key=a["key"])
    s3.upload_part(Bucket=a["bucket"], Key=a["key"], UploadId=upload["UploadId"],
                   PartNumber=1, Body=b"part of a file a crash cut short")
    return {"id": upload["UploadId"]}


def limited_user(a):
    """A new IAM user allowed only `statements` (an IAM policy's Statement
    list), and its access key: what moto checks once `enforce_auth` is on."""
    iam = boto3.client("iam", **KW)
    iam.create_user(UserName=a["name"])
    policy = {"Version": "2012-10-17", "Statement": a["statements"]}
    iam.put_user_policy(UserName=a["name"], PolicyName="limited",
                        PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName=a["name"])["AccessKey"]
    return {"id": key["AccessKeyId"], "secret": key["SecretAccessKey"]}


def enforce_auth(a):
    """Turns moto's IAM checks on or off for every later request (moto's
    own /moto-api/reset-auth: the number of requests to let through
    unchecked, "0" or "inf"). While they are on, only IAM users' keys work,
    so this script's own test keys do not."""
    import urllib.request
    count = b"0" if a["on"] else b"inf"
    request = urllib.request.Request(
        ENDPOINT + "/moto-api/reset-auth", data=count, method="POST",
        headers={"Content-Type": "text/plain"})
    with urllib.request.urlopen(request) as response:
        return json.load(response)


def create_queue(a):
    return {"url": sqs.create_queue(QueueName=a["name"])["QueueUrl"]}


def send(a):
    return {"id": sqs.send_message(QueueUrl=a["url"], MessageBody=a["body"])["MessageId"]}


def counts(a):
    attrs = sqs.get_queue_attributes(QueueUrl=a["url"], AttributeNames=["All"])["Attributes"]
    return {k: int(attrs[k]) for k in ("ApproximateNumberOfMessages",
                                       "ApproximateNumberOfMessagesNotVisible",
                                       "ApproximateNumberOfMessagesDelayed")}


def topic_to_queue(a):
    """A topic with the queue subscribed (SNS envelopes, no raw delivery)."""
    arn = sns.create_topic(Name=a["topic"])["TopicArn"]
    sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=queue_arn(a["url"]))
    return {"arn": arn}


def publish(a):
    return {"id": sns.publish(TopicArn=a["arn"], Message=a["message"])["MessageId"]}


def receive_all(a):
    """Takes every message now in the queue (deleting them); an SNS envelope
    is opened to its message and attributes."""
    out = []
    while True:
        got = sqs.receive_message(QueueUrl=a["url"], MaxNumberOfMessages=10, WaitTimeSeconds=0)
        msgs = got.get("Messages", [])
        if not msgs:
            return {"messages": out}
        for m in msgs:
            body = json.loads(m["Body"])
            attrs = {k: v.get("Value") for k, v in body.get("MessageAttributes", {}).items()}
            out.append({"message": body.get("Message"), "subject": body.get("Subject"),
                        "attributes": attrs})
            sqs.delete_message(QueueUrl=a["url"], ReceiptHandle=m["ReceiptHandle"])


def notify_queue(a):
    """S3 event notifications from the bucket straight to the queue; S3 sends an s3:TestEvent."""
    s3.put_bucket_notification_configuration(Bucket=a["bucket"], NotificationConfiguration={
        "QueueConfigurations": [{"QueueArn": queue_arn(a["url"]), "Events": ["s3:ObjectCreated:*"]}]})
    return {}


def notify_topic(a):
    """S3 event notifications from the bucket to the topic; S3 sends an s3:TestEvent."""
    s3.put_bucket_notification_configuration(Bucket=a["bucket"], NotificationConfiguration={
        "TopicConfigurations": [{"TopicArn": a["arn"], "Events": ["s3:ObjectCreated:*"]}]})
    return {}


print(json.dumps(globals()[COMMAND](ARGS)))
