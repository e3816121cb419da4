"""kafka-python 3.0 transactions: its transactional KafkaProducer (commit, abort,
send_offsets_to_transaction) and its read_committed KafkaConsumer.

1. A KafkaProducer with transactional_id commits 10 records, aborts 10 (flushed first, so they
   are in the log) and commits 10 more to partition 0 of a new topic: 0-9, marker 10, aborted
   11-20, marker 21, 22-31, marker 32. A KafkaConsumer with isolation_level read_committed
   reads the 20 committed records at their offsets and its end_offsets() is 33; one with
   read_uncommitted reads all 30; a confluent-kafka read_committed consumer agrees.
2. Consume-transform-produce: a subscribed kafka-python consumer (read_committed, one record
   per poll) reads inputs 0-4, the producer writes their outputs and sends position 5 with
   group_metadata(), then commits: committed() is 5 (it was unset while the transaction was
   open). Inputs 5-9 go the same way with position 10 but abort: committed() stays 5, and
   read_committed sees only the first round's outputs.
"""

import time

from kafka import KafkaConsumer, KafkaProducer
from kafka.structs import OffsetAndMetadata, TopicPartition

from common import CLIENT_TIMEOUT_S, check, create_topic, parser
from txn_common import expect_view, labelled, start_watchdog

TIMEOUT_MS = CLIENT_TIMEOUT_S * 1000


def producer(bootstrap, transactional_id):
    result = KafkaProducer(bootstrap_servers=bootstrap, transactional_id=transactional_id,
                           max_block_ms=TIMEOUT_MS, request_timeout_ms=TIMEOUT_MS)
    result.init_transactions()
    return result


def consumer(bootstrap, isolation, **settings):
    config = {'bootstrap_servers': bootstrap, 'isolation_level': isolation,
              'enable_auto_commit': False, 'auto_offset_reset': 'earliest',
              'request_timeout_ms': TIMEOUT_MS + 5000}
    config.update(settings)
    return KafkaConsumer(**config)


def send_values(kafka_producer, topic, values):
    for value in values:
        kafka_producer.send(topic, value=value.encode(), partition=0)
    kafka_producer.flush(timeout=CLIENT_TIMEOUT_S)


def kafka_python_view(bootstrap, topic, isolation):
    """What a kafka-python consumer at `isolation` reads from the start: up to its
    end_offsets() (ListOffsets at that level), then half a second more. ([(offset, value)],
    end)."""
    reader = consumer(bootstrap, isolation)
    partition = TopicPartition(topic, 0)
    reader.assign([partition])
    reader.seek_to_beginning(partition)
    end = reader.end_offsets([partition])[partition]
    records = []
    deadline = time.monotonic() + CLIENT_TIMEOUT_S
    while reader.position(partition) < end:
        check(time.monotonic() < deadline,
              f'{isolation}: position {reader.position(partition)} after {CLIENT_TIMEOUT_S}s, '
              f'expected {end}')
        records += [record for batch in reader.poll(timeout_ms=200).values() for record in batch]
    grace = time.monotonic() + 0.5
    while time.monotonic() < grace:
        records += [record for batch in reader.poll(timeout_ms=100).values() for record in batch]
    reader.close()
    return [(record.offset, record.value.decode()) for record in records], end


def expect_kafka_python_view(bootstrap, topic, isolation, expected, expected_end):
    records, end = kafka_python_view(bootstrap, topic, isolation)
    check(end == expected_end,
          f'{topic}: end_offsets() of a {isolation} KafkaConsumer is {end}, expected '
          f'{expected_end}')
    check(records == expected, f'{topic} as a {isolation} KafkaConsumer: got {records}, '
                               f'expected {expected}')
    print(f'{topic} as a {isolation} KafkaConsumer: {len(records)} records, end {end}')


def commit_and_abort(args):
    topic = f'{args.topic}-basic'
    create_topic(args.bootstrap, topic, 1)
    kafka_producer = producer(args.bootstrap, f'{topic}-txn')
    for label, commit in [('first', True), ('aborted', False), ('second', True)]:
        kafka_producer.begin_transaction()
        send_values(kafka_producer, topic, labelled(label, 10))
        if commit:
            kafka_producer.commit_transaction()
        else:
            kafka_producer.abort_transaction()
        print(f'transaction {label}: {"committed" if commit else "aborted"}')
    kafka_producer.close(timeout=CLIENT_TIMEOUT_S)

    committed = labelled('first', 10, 0) + labelled('second', 10, 22)
    everything = labelled('first', 10, 0) + labelled('aborted', 10, 11) + labelled('second', 10, 22)
    expect_kafka_python_view(args.bootstrap, topic, 'read_committed', committed, 33)
    expect_kafka_python_view(args.bootstrap, topic, 'read_uncommitted', everything, 33)
    expect_view(args.bootstrap, topic, 0, 'read_committed', committed, 33)


def committed_offset(args, group, topic):
    """committed() of a read_uncommitted consumer of `group` that does not join it."""
    probe = consumer(args.bootstrap, 'read_uncommitted', group_id=group)
    offset = probe.committed(TopicPartition(topic, 0))
    probe.close()
    return offset


def consume_transform_produce(args):
    source, sink, group = f'{args.topic}-in', f'{args.topic}-out', f'{args.topic}-group'
    create_topic(args.bootstrap, source, 1)
    create_topic(args.bootstrap, sink, 1)
    plain = KafkaProducer(bootstrap_servers=args.bootstrap)
    send_values(plain, source, labelled('input', 10))
    plain.close()
    reader = consumer(args.bootstrap, 'read_committed', group_id=group, max_poll_records=1,
                      session_timeout_ms=6000, heartbeat_interval_ms=1000)
    reader.subscribe([source])
    kafka_producer = producer(args.bootstrap, f'{group}-txn')
    partition = TopicPartition(source, 0)
    for first, commit in [(0, True), (5, False)]:
        values = []
        deadline = time.monotonic() + CLIENT_TIMEOUT_S
        while len(values) < 5 and time.monotonic() < deadline:
            values += [record.value.decode()
                       for batch in reader.poll(timeout_ms=200).values() for record in batch]
        check(values == labelled('input', 10)[first:first + 5],
              f'round from {first}: consumed {values}')
        kafka_producer.begin_transaction()
        send_values(kafka_producer, sink, [value.replace('input', 'output') for value in values])
        kafka_producer.send_offsets_to_transaction(
            {partition: OffsetAndMetadata(first + 5, '', -1)}, reader.group_metadata())
        pending = committed_offset(args, group, source)
        check(pending == (None if first == 0 else 5),
              f'round from {first}: committed() is {pending} while the offsets are pending')
        if commit:
            kafka_producer.commit_transaction()
        else:
            kafka_producer.abort_transaction()
        after = committed_offset(args, group, source)
        check(after == 5, f'round from {first} {"committed" if commit else "aborted"}: '
                          f'committed() is {after}, expected 5')
        check(reader.committed(partition) == 5,
              f'committed() of the read_committed member is {reader.committed(partition)}')
        print(f'round from {first}: {"committed" if commit else "aborted"}, committed() = 5')
    reader.close()
    kafka_producer.close(timeout=CLIENT_TIMEOUT_S)
    expect_kafka_python_view(args.bootstrap, sink, 'read_committed',
                             labelled('output', 5, 0), 12)


def main():
    arguments = parser(__doc__)
    arguments.add_argument('--topic', required=True)
    args = arguments.parse_args()
    start_watchdog()
    commit_and_abort(args)
    consume_transform_produce(args)
    print('kafka-python transactions: commit, abort and offsets behave as in Kafka')


if __name__ == '__main__':
    main()
