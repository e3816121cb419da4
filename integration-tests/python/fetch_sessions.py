"""kafka-python 3.0 consuming a many-partition topic through incremental fetch sessions.

A producer thread writes rounds of records to random subsets of the --partitions partitions
while a group-less consumer, assigned every partition, reads them. kafka-python opens a
fetch session (KIP-227) on its first Fetch and then sends incremental ones, naming only the
partitions whose position moved. Every record must arrive exactly once and in order within
its partition. The fetcher's own log lines are counted to show the sessions were really
incremental and that the broker never refused one.
"""

import logging
import random
import threading
import time
from collections import defaultdict

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic

from common import CLIENT_TIMEOUT_S, check, fail, parser

# How many partitions each production round writes to, and records to each: most partitions
# stay unchanged between two fetches, which is what incremental responses leave out.
PARTITIONS_PER_ROUND = 8
RECORDS_PER_PARTITION_PER_ROUND = 5
# A pause between rounds, so the consumer fetches while production goes on.
ROUND_PAUSE_S = 0.02


class SessionLog(logging.Handler):
    """Counts the fetcher's session log lines by their message template (never formatted)."""

    TEMPLATES = {
        'incremental_request': 'Built incremental fetch',
        'incremental_response': 'sent an incremental fetch response for session',
        'session_created': 'created a new incremental fetch session',
        'refused': 'was unable to process the fetch request',
        'invalid_response': 'sent an invalid',
    }

    def __init__(self):
        super().__init__(level=logging.DEBUG)
        self.counts = defaultdict(int)
        self.refusals = []

    def emit(self, record):
        template = str(record.msg)
        for name, text in self.TEMPLATES.items():
            if text in template:
                self.counts[name] += 1
                if name in ('refused', 'invalid_response'):
                    self.refusals.append(record.getMessage())


def record_value(partition, sequence, padding):
    """The value of record `sequence` (0, 1, ...) of `partition`."""
    return f'{partition}:{sequence}:'.encode() + b'x' * padding


def create_topic(bootstrap, topic, partitions):
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=15000)
    admin.create_topics([NewTopic(topic, partitions, 1)], timeout_ms=15000)
    admin.close()


def produce(bootstrap, topic, partitions, rounds, padding, expected, errors):
    """Writes `rounds` rounds; records per partition in `expected`; failures in `errors`."""
    try:
        producer = KafkaProducer(
            bootstrap_servers=bootstrap,
            linger_ms=5,
            max_block_ms=CLIENT_TIMEOUT_S * 1000,
            request_timeout_ms=15000,
            delivery_timeout_ms=CLIENT_TIMEOUT_S * 1000,
        )
        chooser = random.Random(227)
        futures = []
        for _ in range(rounds):
            for partition in chooser.sample(range(partitions), PARTITIONS_PER_ROUND):
                for _ in range(RECORDS_PER_PARTITION_PER_ROUND):
                    sequence = expected[partition]
                    value = record_value(partition, sequence, padding)
                    futures.append(producer.send(topic, value=value, partition=partition))
                    expected[partition] += 1
            time.sleep(ROUND_PAUSE_S)
        producer.flush(timeout=CLIENT_TIMEOUT_S)
        for future in futures:
            future.get(timeout=CLIENT_TIMEOUT_S)
        producer.close(timeout=10)
    except Exception as error:  # reported by the main thread
        errors.append(repr(error))


def consume(consumer, partitions, expected, producing, received):
    """Polls until the producer is done and every expected record arrived, or time is up."""
    deadline = time.monotonic() + 3 * CLIENT_TIMEOUT_S
    while time.monotonic() < deadline:
        for tp, records in consumer.poll(timeout_ms=200).items():
            received[tp.partition].extend(records)
        done = not producing.is_alive()
        if done and all(len(received[p]) >= expected[p] for p in range(partitions)):
            return
    fail('timed out: received ' + str(sum(len(r) for r in received.values())) +
         f' of {sum(expected.values())} records')


def verify(received, expected, partitions, padding):
    """Every record once, in order: offsets 0, 1, ... and values partition:0, partition:1, ..."""
    for partition in range(partitions):
        records = received[partition]
        check(len(records) == expected[partition],
              f'partition {partition}: {len(records)} records, expected {expected[partition]}')
        for position, record in enumerate(records):
            check(record.offset == position,
                  f'partition {partition}: offset {record.offset} at position {position}')
            value = record_value(partition, position, padding)
            check(record.value == value,
                  f'partition {partition} offset {record.offset}: {record.value!r}, expected {value!r}')


def main():
    arguments = parser(__doc__)
    arguments.add_argument('--topic', required=True)
    arguments.add_argument('--partitions', type=int, default=64)
    arguments.add_argument('--rounds', type=int, default=120)
    arguments.add_argument('--fetch-max-bytes', type=int, default=52428800,
                           help="the consumer's fetch_max_bytes (kafka-python's default)")
    arguments.add_argument('--value-bytes', type=int, default=0,
                           help='padding added to each value')
    args = arguments.parse_args()

    session_log = SessionLog()
    fetcher_log = logging.getLogger('kafka.consumer.fetcher')
    fetcher_log.setLevel(logging.DEBUG)
    fetcher_log.addHandler(session_log)

    create_topic(args.bootstrap, args.topic, args.partitions)
    consumer = KafkaConsumer(bootstrap_servers=args.bootstrap, enable_auto_commit=False,
                             request_timeout_ms=15000, fetch_max_bytes=args.fetch_max_bytes)
    check(consumer.config['enable_incremental_fetch_sessions'],
          'kafka-python has incremental fetch sessions turned off')
    assignment = [TopicPartition(args.topic, p) for p in range(args.partitions)]
    consumer.assign(assignment)
    consumer.seek_to_beginning(*assignment)
    consumer.poll(timeout_ms=500)  # the first, full fetch opens the session

    expected = defaultdict(int)
    received = defaultdict(list)
    errors = []
    producing = threading.Thread(
        target=produce,
        args=(args.bootstrap, args.topic, args.partitions, args.rounds, args.value_bytes,
              expected, errors))
    producing.start()
    try:
        consume(consumer, args.partitions, expected, producing, received)
    finally:
        producing.join(timeout=CLIENT_TIMEOUT_S)
    check(not errors, f'producer failed: {errors}')
    # A late duplicate would show up in one more poll.
    for tp, records in consumer.poll(timeout_ms=1000).items():
        received[tp.partition].extend(records)
    consumer.close()
    verify(received, expected, args.partitions, args.value_bytes)

    counts = session_log.counts
    print(f'consumed {sum(expected.values())} records from {args.partitions} partitions '
          f'exactly once, in order')
    print('fetch sessions: ' + ', '.join(f'{name} {counts[name]}'
                                         for name in SessionLog.TEMPLATES))
    check(not session_log.refusals, f'the broker refused or garbled fetches: {session_log.refusals[:5]}')
    check(counts['session_created'] >= 1, 'no fetch session was created')
    check(counts['incremental_response'] >= 10,
          f'only {counts["incremental_response"]} incremental fetch responses')


if __name__ == '__main__':
    main()
