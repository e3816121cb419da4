"""Helpers shared by the test scripts: arguments, failing loudly, and confluent-kafka setup.

Every script takes --bootstrap HOST:PORT, prints what it did, and exits non-zero through
fail() on any mismatch. No client call may wait longer than CLIENT_TIMEOUT_S, so a broken
broker fails the test in well under a minute instead of hanging it.
"""

import argparse
import json
import sys
import time

# The longest any single client operation may take, in seconds.
CLIENT_TIMEOUT_S = 30

# A fixed CreateTime far from "now", so a broker that overwrote it would be caught.
BASE_TIMESTAMP_MS = 1_600_000_000_000


def parser(description):
    """An argument parser with the --bootstrap option every script needs."""
    result = argparse.ArgumentParser(description=description)
    result.add_argument('--bootstrap', required=True, help='broker address, HOST:PORT')
    return result


def fail(message):
    """Ends the script with exit status 1 and the message on stderr."""
    sys.exit(f'FAIL: {message}')


def check(condition, message):
    """fail(message) unless condition holds."""
    if not condition:
        fail(message)


def expected_record(index, prefix='message'):
    """The key, value, headers and timestamp the scripts send as message number `index`."""
    key = f'key-{index}'.encode()
    # At least 100 repeated bytes, so even a one-record batch shrinks under every codec
    # (librdkafka sends a batch uncompressed when compressing would not make it smaller).
    value = f'{prefix}-{index}-'.encode() + b'x' * (100 + index % 97)
    headers = [('index', str(index).encode()), ('source', prefix.encode())]
    timestamp_ms = BASE_TIMESTAMP_MS + index * 1000
    return key, value, headers, timestamp_ms


def index_of_key(key):
    """The message number encoded in a key written by expected_record()."""
    check(key is not None and key.startswith(b'key-'), f'unexpected key {key!r}')
    return int(key[len(b'key-'):])


# --- confluent-kafka (librdkafka) ---------------------------------------------------------

def confluent_config(bootstrap, settings=None):
    """Settings every librdkafka client gets: IPv4 only (the broker listens on 127.0.0.1) and
    socket timeouts; `settings` (librdkafka names) are added on top."""
    config = {
        'bootstrap.servers': bootstrap,
        'broker.address.family': 'v4',
        'socket.timeout.ms': CLIENT_TIMEOUT_S * 1000,
    }
    config.update(settings or {})
    return config


def confluent_producer(bootstrap, settings=None):
    """A Producer whose messages fail (instead of waiting forever) after CLIENT_TIMEOUT_S."""
    from confluent_kafka import Producer
    config = {'message.timeout.ms': CLIENT_TIMEOUT_S * 1000}
    config.update(settings or {})
    return Producer(confluent_config(bootstrap, config))


def confluent_consumer(bootstrap, topic, settings=None):
    """A Consumer for callers that assign() partitions and do not commit: group.id is set only
    because the client requires one (group consumers live in the group_*.py scripts)."""
    from confluent_kafka import Consumer
    config = {
        'group.id': f'riffle-it-{topic}',
        'enable.auto.commit': False,
        'enable.auto.offset.store': False,
        'auto.offset.reset': 'earliest',
    }
    config.update(settings or {})
    return Consumer(confluent_config(bootstrap, config))


def create_topic(bootstrap, topic, partitions, config=None):
    """Creates a topic with the AdminClient (CreateTopics) and waits for the result."""
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient(confluent_config(bootstrap))
    futures = admin.create_topics(
        [NewTopic(topic, num_partitions=partitions, replication_factor=1, config=config or {})],
        request_timeout=CLIENT_TIMEOUT_S, operation_timeout=CLIENT_TIMEOUT_S)
    futures[topic].result(timeout=CLIENT_TIMEOUT_S)
    metadata = admin.list_topics(topic, timeout=CLIENT_TIMEOUT_S)
    listed = metadata.topics.get(topic)
    check(listed is not None and listed.error is None, f'metadata for new topic {topic}: {listed}')
    check(len(listed.partitions) == partitions,
          f'{topic} has {len(listed.partitions)} partitions in metadata, created {partitions}')
    print(f'created topic {topic} with {partitions} partitions, config {config or {}}')


class DeliveryReports:
    """Collects delivery reports: messages acknowledged and errors, by message number."""

    def __init__(self):
        self.delivered = {}  # index -> (partition, offset)
        self.errors = []

    def callback(self, index):
        def on_delivery(error, message):
            if error is not None:
                self.errors.append((index, str(error)))
            else:
                self.delivered[index] = (message.partition(), message.offset())
        return on_delivery


def flush_all(producer, reports, count):
    """Flushes and checks that every one of `count` messages was delivered without error."""
    remaining = producer.flush(CLIENT_TIMEOUT_S + 15)
    check(remaining == 0, f'{remaining} messages still queued after flush')
    check(not reports.errors, f'{len(reports.errors)} delivery errors, first: {reports.errors[:3]}')
    check(len(reports.delivered) == count,
          f'{len(reports.delivered)} of {count} messages got a delivery report')


def consume(consumer, count, timeout_s=CLIENT_TIMEOUT_S):
    """Polls until `count` messages arrived; fails after timeout_s with what it got."""
    deadline = time.monotonic() + timeout_s
    messages = []
    errors = []
    while len(messages) < count and time.monotonic() < deadline:
        message = consumer.poll(0.5)
        if message is None:
            continue
        error = message.error()
        if error is not None:
            check(not error.fatal(), f'fatal consumer error: {error}')
            errors.append(str(error))
            continue
        messages.append(message)
    check(len(messages) == count,
          f'consumed {len(messages)} of {count} messages within {timeout_s}s; '
          f'consumer errors: {errors[-5:]}')
    return messages


def expect_no_more(consumer, seconds=1.0):
    """Polls for `seconds` and fails if any message (a duplicate or a stray) arrives."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        message = consumer.poll(0.2)
        if message is not None and message.error() is None:
            fail(f'unexpected extra message at {message.partition()}/{message.offset()}: '
                 f'key {message.key()!r}')


def check_confluent_message(message, index, prefix='message'):
    """Checks key, value, headers and CreateTime of a consumed confluent-kafka message."""
    from confluent_kafka import TIMESTAMP_CREATE_TIME
    key, value, headers, timestamp_ms = expected_record(index, prefix)
    where = f'message {index} at {message.partition()}/{message.offset()}'
    check(message.key() == key, f'{where}: key {message.key()!r}, expected {key!r}')
    check(message.value() == value, f'{where}: value {message.value()!r}, expected {value!r}')
    check(message.headers() == headers,
          f'{where}: headers {message.headers()!r}, expected {headers!r}')
    check(message.timestamp() == (TIMESTAMP_CREATE_TIME, timestamp_ms),
          f'{where}: timestamp {message.timestamp()}, expected CreateTime {timestamp_ms}')


class Statistics:
    """Keeps the latest librdkafka statistics JSON (statistics.interval.ms + stats_cb)."""

    def __init__(self):
        self.latest = None

    def callback(self, text):
        self.latest = json.loads(text)

    def partition(self, topic, partition):
        """The statistics object of one partition, or None before the first report."""
        if self.latest is None:
            return None
        partitions = self.latest.get('topics', {}).get(topic, {}).get('partitions', {})
        return partitions.get(str(partition))
