"""Committed offsets and their metadata strings survive a broker restart.

--phase commit: a kafka-python consumer in --group reads all 60 messages of a 2-partition
topic, then commits offset 20 with metadata 'checkpoint-0' on partition 0 and offset 25 with
'checkpoint-1' on partition 1 (less than it read, so resuming from them is observable), and
checks OffsetFetch returns both before the restart.

--phase resume (after the test restarted the broker): 20 more messages are produced; kafka-
python's committed(metadata=True) and confluent-kafka's committed() both return the offsets
with their metadata strings; and a new group member starts exactly at the committed offsets:
it reads messages 20.. of partition 0 and 25.. of partition 1 once each, and nothing else.
"""

import time

from confluent_kafka import TopicPartition as ConfluentTopicPartition
from kafka import KafkaConsumer, OffsetAndMetadata, TopicPartition

from common import CLIENT_TIMEOUT_S, check, confluent_consumer, create_topic, parser
from group_common import index_of_message_key, produce_indexed

PARTITIONS = 2
# Committed offset and metadata per partition.
COMMITS = {0: (20, 'checkpoint-0'), 1: (25, 'checkpoint-1')}
FIRST_COUNT = 60
SECOND_COUNT = 20


def group_consumer(args):
    consumer = KafkaConsumer(bootstrap_servers=args.bootstrap, group_id=args.group,
                             client_id='commit-metadata', auto_offset_reset='earliest',
                             enable_auto_commit=False, session_timeout_ms=6000,
                             heartbeat_interval_ms=1000,
                             request_timeout_ms=CLIENT_TIMEOUT_S * 1000)
    consumer.subscribe([args.topic])
    return consumer


def poll_until(consumer, count, seconds=CLIENT_TIMEOUT_S):
    """Polls until `count` records arrived (or the time is up); returns them."""
    records = []
    deadline = time.monotonic() + seconds
    while len(records) < count and time.monotonic() < deadline:
        for batch in consumer.poll(timeout_ms=500).values():
            records.extend(batch)
    return records


def check_committed_kafka_python(consumer, topic):
    for partition, (offset, metadata) in COMMITS.items():
        committed = consumer.committed(TopicPartition(topic, partition), metadata=True,
                                       timeout_ms=CLIENT_TIMEOUT_S * 1000)
        check(committed is not None, f'kafka-python: nothing committed on partition {partition}')
        check((committed.offset, committed.metadata) == (offset, metadata),
              f'kafka-python committed() on partition {partition} returned {committed}, '
              f'expected offset {offset} metadata {metadata!r}')
    print(f'kafka-python committed() returns {COMMITS}')


def phase_commit(args):
    create_topic(args.bootstrap, args.topic, PARTITIONS)
    produce_indexed(args.bootstrap, args.topic, range(FIRST_COUNT), PARTITIONS)
    consumer = group_consumer(args)
    records = poll_until(consumer, FIRST_COUNT)
    check(len(records) == FIRST_COUNT, f'read {len(records)} of {FIRST_COUNT} messages')
    consumer.commit({TopicPartition(args.topic, partition): OffsetAndMetadata(offset, metadata, -1)
                     for partition, (offset, metadata) in COMMITS.items()},
                    timeout_ms=CLIENT_TIMEOUT_S * 1000)
    check_committed_kafka_python(consumer, args.topic)
    consumer.close()
    print(f'read {FIRST_COUNT} messages, committed {COMMITS}')


def check_committed_confluent(args):
    consumer = confluent_consumer(args.bootstrap, args.topic, {'group.id': args.group})
    committed = consumer.committed([ConfluentTopicPartition(args.topic, partition)
                                    for partition in COMMITS], timeout=CLIENT_TIMEOUT_S)
    consumer.close()
    for entry in committed:
        offset, metadata = COMMITS[entry.partition]
        check(entry.error is None, f'confluent committed() error on {entry.partition}: {entry.error}')
        check((entry.offset, entry.metadata) == (offset, metadata),
              f'confluent committed() on partition {entry.partition} returned offset '
              f'{entry.offset} metadata {entry.metadata!r}, expected {offset} {metadata!r}')
    print(f'confluent-kafka committed() returns {COMMITS}')


def phase_resume(args):
    produced = produce_indexed(args.bootstrap, args.topic,
                               range(FIRST_COUNT, FIRST_COUNT + SECOND_COUNT), PARTITIONS)
    check_committed_confluent(args)
    consumer = group_consumer(args)
    check_committed_kafka_python(consumer, args.topic)
    per_partition = (FIRST_COUNT + SECOND_COUNT) // PARTITIONS
    expected = {(partition, offset) for partition, (committed, _) in COMMITS.items()
                for offset in range(committed, per_partition)}
    records = poll_until(consumer, len(expected))
    records.extend(poll_until(consumer, 1, seconds=1.5))
    consumer.close()
    seen = [(record.partition, record.offset) for record in records]
    check(len(seen) == len(set(seen)), f'duplicates after the restart: {sorted(seen)}')
    check(set(seen) == expected,
          f'after the restart the group read {sorted(set(seen) - expected)[:10]} extra and '
          f'missed {sorted(expected - set(seen))[:10]}')
    for record in records:
        index = index_of_message_key(record.key.decode())
        if index >= FIRST_COUNT:
            check(produced[index] == (record.partition, record.offset),
                  f'message {index} read at {record.partition}/{record.offset}')
    print(f'resumed at the committed offsets: read {len(records)} messages once each')


def main():
    arguments = parser(__doc__)
    arguments.add_argument('--topic', required=True)
    arguments.add_argument('--group', required=True)
    arguments.add_argument('--phase', required=True, choices=['commit', 'resume'])
    args = arguments.parse_args()
    if args.phase == 'commit':
        phase_commit(args)
    else:
        phase_resume(args)


if __name__ == '__main__':
    main()
