"""confluent-kafka consume-transform-produce: send_offsets_to_transaction.

A subscribed read_committed consumer of group G reads 10 of 30 input records; the
transactional producer writes an output for each and sends the consumer's position (10) and
group metadata to the transaction. Until the commit, OffsetFetch as a read_uncommitted
consumer (which does not ask for stable offsets) shows no committed offset; after it, 10, and
the same as a read_committed one. Round 2 reads 10 more, sends 20 and aborts: the committed
offset stays 10 and round 2's outputs never become visible. The consumer seeks back to the
committed offset and round 3 redoes inputs 10-19 and commits 20. read_committed then shows
outputs 0-19 exactly once each; read_uncommitted also round 2's 10. A new consumer of G
resumes at 20 and reads inputs 20-29.
"""

import time

from confluent_kafka import OFFSET_INVALID, Consumer, TopicPartition

from common import (CLIENT_TIMEOUT_S, check, confluent_config, confluent_producer, create_topic,
                    parser)
from txn_common import (flush, labelled, poll_for, produce_values, read_visible, start_watchdog,
                        transactional_producer)

INPUT_COUNT = 30
ROUND_SIZE = 10


def committed_offset(bootstrap, group, topic, isolation):
    """OffsetFetch for group/topic/0 through committed() of a consumer that does not join."""
    consumer = Consumer(confluent_config(bootstrap, {
        'group.id': group, 'isolation.level': isolation, 'enable.auto.commit': False}))
    [partition] = consumer.committed([TopicPartition(topic, 0)], timeout=CLIENT_TIMEOUT_S)
    consumer.close()
    check(partition.error is None, f'committed() of {group} as {isolation}: {partition.error}')
    return partition.offset


def expect_committed(args, expected, when, isolations=('read_uncommitted', 'read_committed')):
    """committed() of G's input partition, as consumers of each isolation level see it. A
    read_committed consumer asks for stable offsets (KIP-447), which Kafka withholds while a
    transaction with offsets for the group is open, so only read_uncommitted is asked then."""
    for isolation in isolations:
        offset = committed_offset(args.bootstrap, args.group, args.input, isolation)
        check(offset == expected,
              f'{when}: committed offset of {args.group} as a {isolation} consumer is {offset}, '
              f'expected {expected} (OFFSET_INVALID={OFFSET_INVALID} means none)')
    print(f'{when}: committed offset {expected}')


def subscribed_consumer(args):
    consumer = Consumer(confluent_config(args.bootstrap, {
        'group.id': args.group,
        'isolation.level': 'read_committed',
        'enable.auto.commit': False,
        'auto.offset.reset': 'earliest',
        'session.timeout.ms': 6000,
        'heartbeat.interval.ms': 1000,
    }))
    consumer.subscribe([args.input])
    return consumer


def read_round(consumer, first_index):
    """Polls exactly ROUND_SIZE input records and checks they are inputs first_index.. in
    order."""
    values = []
    errors = []
    deadline = time.monotonic() + CLIENT_TIMEOUT_S
    while len(values) < ROUND_SIZE and time.monotonic() < deadline:
        message = consumer.poll(0.2)
        if message is None:
            continue
        if message.error() is not None:
            errors.append(str(message.error()))
            continue
        values.append(message.value().decode())
    expected = [f'input-{index}' for index in range(first_index, first_index + ROUND_SIZE)]
    check(values == expected, f'read {values}, expected {expected}; consumer errors {errors[-3:]}')
    return values


def transform_round(args, consumer, producer, first_index):
    """One round: read 10 inputs, begin, write their outputs, send the position. The caller
    commits or aborts."""
    values = read_round(consumer, first_index)
    producer.begin_transaction()
    produce_values(producer, args.output, 0, [value.replace('input', 'output') for value in values])
    positions = consumer.position(consumer.assignment())
    check([(p.topic, p.partition, p.offset) for p in positions]
          == [(args.input, 0, first_index + ROUND_SIZE)],
          f'consumer positions {positions}, expected {args.input}/0 at {first_index + ROUND_SIZE}')
    producer.send_offsets_to_transaction(positions, consumer.consumer_group_metadata(),
                                         CLIENT_TIMEOUT_S)
    flush(producer)


def main():
    arguments = parser(__doc__)
    arguments.add_argument('--input', required=True)
    arguments.add_argument('--output', required=True)
    arguments.add_argument('--group', required=True)
    args = arguments.parse_args()
    start_watchdog()
    create_topic(args.bootstrap, args.input, 1)
    create_topic(args.bootstrap, args.output, 1)
    plain = confluent_producer(args.bootstrap)
    produce_values(plain, args.input, 0, labelled('input', INPUT_COUNT))
    flush(plain)

    consumer = subscribed_consumer(args)
    producer = transactional_producer(args.bootstrap, f'{args.group}-txn')
    producer.init_transactions(CLIENT_TIMEOUT_S)
    expect_committed(args, OFFSET_INVALID, 'before any transaction')

    transform_round(args, consumer, producer, 0)
    expect_committed(args, OFFSET_INVALID, 'round 1 offsets sent, transaction still open',
                     isolations=['read_uncommitted'])
    producer.commit_transaction(CLIENT_TIMEOUT_S)
    expect_committed(args, 10, 'round 1 committed')

    transform_round(args, consumer, producer, 10)
    producer.abort_transaction(CLIENT_TIMEOUT_S)
    expect_committed(args, 10, 'round 2 aborted')

    consumer.seek(TopicPartition(args.input, 0, 10))
    transform_round(args, consumer, producer, 10)
    producer.commit_transaction(CLIENT_TIMEOUT_S)
    expect_committed(args, 20, 'round 3 (round 2 redone) committed')
    consumer.close()

    outputs = [f'output-{index}' for index in range(20)]
    committed, _ = read_visible(args.bootstrap, args.output, 0, 'read_committed')
    check([value for _, value in committed] == outputs,
          f'read_committed outputs {committed}, expected outputs 0-19 once each')
    everything, _ = read_visible(args.bootstrap, args.output, 0, 'read_uncommitted')
    check(sorted(value for _, value in everything) == sorted(outputs + outputs[10:]),
          f'read_uncommitted outputs {everything}: expected rounds 1, 2 (aborted) and 3')
    print('read_committed output holds inputs 0-19 transformed exactly once')

    resumed = subscribed_consumer(args)
    values = read_round(resumed, 20)
    extra = poll_for(resumed, 1.0)
    check(not extra, f'the resumed consumer got more than inputs 20-29: {extra}')
    resumed.close()
    print(f'a new consumer of {args.group} resumed at the committed offset 20: {values[0]}..')


if __name__ == '__main__':
    main()
